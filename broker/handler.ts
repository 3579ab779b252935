/**
 * What a handler is: a function from a decoded request to a response object. Handlers never see bytes or sockets;
 * each declares the versions it implements, and the dispatcher's table of handlers is the one source of the
 * ranges ApiVersions advertises.
 */
import type { ApiSpec } from '../protocol/schema.js'
import type { VersionRange } from '../protocol/versions.js'
import type { Broker } from './broker.js'

/** Returned by a handler whose request gets no response (Produce with acks=0). */
export const NO_RESPONSE: unique symbol = Symbol('no response')
/** Returned when the connection must close instead of answering (Produce with acks=0 that failed, as Kafka does). */
export const CLOSE_CONNECTION: unique symbol = Symbol('close connection')

export type HandlerResult<Res> = Res | typeof NO_RESPONSE | typeof CLOSE_CONNECTION

export interface RequestContext {
  readonly broker: Broker
  readonly apiVersion: number
  readonly clientId: string | null
  /** The client's address, for log lines. */
  readonly remote: string
  /** The client's IP address alone (group members' clientHost). */
  readonly remoteHost: string
  /** Aborted when the connection closes, so parked requests (long-polling fetches) stop waiting. */
  readonly signal: AbortSignal
  /**
   * Says the request now waits on other requests or on time (a long poll, a rebalance), as in Kafka's purgatory: it
   * no longer counts against queued.max.requests, so parked requests cannot keep the node from reading new ones.
   * Its bytes still count until it is answered. Calling it more than once is harmless.
   */
  parked(): void
}

export interface HandlerOptions {
  /**
   * The connection reads no further request until this one is answered and its answer has left the socket. Kafka
   * mutes every connection so; Brook does it for requests whose answers can be large (Fetch), so that pipelined
   * requests cannot pile up answers that a client is not reading, and pipelines the others (produce requests from
   * one connection are written together by the group commit).
   */
  readonly mutesConnection?: boolean
}

export interface HandlerEntry {
  readonly api: ApiSpec
  readonly versions: VersionRange
  // The dispatcher holds handlers of every request type in one table, so the request type is erased here.
  readonly handle: (request: any, context: RequestContext) => HandlerResult<unknown> | Promise<HandlerResult<unknown>>
  readonly options: HandlerOptions
}

export function defineHandler<Req, Res>(
  api: ApiSpec,
  versions: VersionRange,
  handle: (request: Req, context: RequestContext) => HandlerResult<Res> | Promise<HandlerResult<Res>>,
  options: HandlerOptions = {},
): HandlerEntry {
  return { api, versions, handle, options }
}

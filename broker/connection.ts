/**
 * One client connection: splits frames, decodes headers, hands requests to the dispatcher, and writes responses in
 * request order even when handlers finish out of order (the protocol guide: "responses will return in that order").
 *
 *   bytes -> [size] -> admitted? -> [rest of the frame] -> header -> handler (started in arrival order) -> slot
 *   slots: [ #7 done | #8 waiting | #9 done ]  -> only #7 is written until #8 completes
 *
 * Handlers start synchronously in arrival order, so two produce requests on one connection append in the order they
 * were sent. Frames with a negative size or one above `socket.request.max.bytes` close the connection before
 * anything is allocated for them, as Kafka's NetworkReceive does; so do undecodable headers or bodies, unknown API
 * keys and unsupported versions (an ApiVersions request of any version gets an answer instead, per KIP-511).
 *
 * Backpressure, after Kafka's SocketServer: requests are read only as fast as they are handled. Once a frame's size
 * is known, the frame is admitted only if
 *   - this connection has fewer than MAX_IN_FLIGHT_REQUESTS requests and MAX_IN_FLIGHT_BYTES request bytes in
 *     progress (a small pipelining window; Kafka allows one request, but clients pipeline produce requests and the
 *     group commit writes what arrives together),
 *   - no request that mutes the connection (Fetch) is in progress or has its answer still in the socket,
 *   - the socket's unsent answers are below its high-water mark (writableNeedDrain is false),
 *   - and the node's RequestBudget has room for its bytes (queued.max.request.bytes).
 * Otherwise the socket is paused: the kernel's buffers fill and TCP makes the client wait. An admitted frame is read
 * to its end; its bytes count against the budget from the moment its size is read until it is answered (acks=0
 * produce: until its append is done). Once it is in whole, it takes a place in queued.max.requests, or waits unread
 * with the socket paused until one is free: a partly sent frame holds no place, so clients that send the start of
 * frames and stall cannot take every place. Bytes read beyond an admitted frame are at most one socket read.
 *
 * Failure: an exception anywhere in handling a request, encoding its answer or reading the socket is logged with its
 * stack and closes this connection only. A connection with no bytes read or written for connections.max.idle.ms is
 * closed, also in the middle of a frame.
 */
import type { Socket } from 'node:net'
import { Reader, DecodeError } from '../protocol/reader.js'
import { codecFor } from '../protocol/codec.js'
import { API_VERSIONS_KEY, decodeRequestHeader, encodeResponseFrame } from '../protocol/frame.js'
import { inRange } from '../protocol/versions.js'
import { apiVersions } from '../protocol/messages/api-versions.js'
import { CLOSE_CONNECTION, NO_RESPONSE, type BrokerServices, type HandlerEntry, type HandlerResult, type RequestContext } from './handler.js'
import type { Dispatcher } from './dispatcher.js'
import type { Logger } from './logger.js'
import type { RequestBudget } from './request-budget.js'
import { hostPort } from '../client/address.js'

/** What a connection serves its requests with; one of each per node. */
export interface ConnectionDeps {
  readonly dispatcher: Dispatcher
  /** Handed to every handler; its config also gives socket.request.max.bytes and connections.max.idle.ms. */
  readonly services: BrokerServices
  /** queued.max.requests and queued.max.request.bytes, shared by every connection of the node. */
  readonly budget: RequestBudget
  readonly log: Logger
}

interface Slot {
  done: boolean
  buffers: Buffer[]
  close: boolean
  /** The request mutes the connection until its answer has left the socket. */
  mutes: boolean
  /** RequestContext.onAnswerSent's callbacks, run once the answer has left the socket or will never be sent. */
  sent: (() => void)[]
}

/** A request's share of the budget, from admission until it is answered. */
interface Ticket {
  readonly size: number
  /** It holds a place in queued.max.requests: taken once the whole frame is in. */
  placed: boolean
  /** Its place was given back early (RequestContext.parked). */
  parked: boolean
}

/** Requests one connection may have in progress before it stops reading. */
const MAX_IN_FLIGHT_REQUESTS = 64
/**
 * Request bytes one connection may have in progress before it stops reading (a frame is admitted while the total is
 * below this, however large the frame). 16 MiB holds 16 of librdkafka's default 1 MB produce requests, which the group
 * commit then writes together; eight such connections already fill the default queued.max.request.bytes.
 */
const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024

export class Connection {
  private chunks: Buffer[] = []
  private buffered = 0
  /** The frame being received, once admitted (its size, its share of the budget); null between frames. */
  private admitted: Ticket | null = null
  private readonly slots: Slot[] = []
  private inFlightBytes = 0
  /** Requests that mute the connection, in progress or with an answer not yet handed to the kernel. */
  private muting = 0
  private paused = false
  private waitingForBudget = false
  private reading = false
  private corked = false
  private readonly abort = new AbortController()
  readonly remote: string

  private readonly budgetHasRoom = (): void => {
    this.waitingForBudget = false
    this.guard('reading requests', () => this.readFrames())
  }

  private readonly dispatcher: Dispatcher
  private readonly services: BrokerServices
  private readonly budget: RequestBudget
  private readonly log: Logger

  constructor(
    private readonly socket: Socket,
    deps: ConnectionDeps,
  ) {
    this.dispatcher = deps.dispatcher
    this.services = deps.services
    this.budget = deps.budget
    this.log = deps.log
    this.remote = hostPort(socket.remoteAddress ?? '', socket.remotePort ?? 0)
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.guard('reading requests', () => this.onData(chunk)))
    socket.on('drain', () => this.guard('reading requests', () => this.readFrames()))
    socket.on('error', (error) => this.log.debug(`connection ${this.remote}: ${error.message}`))
    socket.on('close', () => this.release())
    const idleMs = this.services.config.connectionsMaxIdleMs
    socket.setTimeout(idleMs, () => this.close(`idle for ${idleMs} ms (connections.max.idle.ms)`, { level: 'debug' }))
    // The listener accepts sockets paused, so that none is read before it is admitted.
    socket.resume()
  }

  get closed(): boolean {
    return this.abort.signal.aborted
  }

  /**
   * Closes the connection, logging `reason` at `level`. A warning is logged at most once a minute per client host
   * and reason: a client refused for its request (an old one asking Fetch v3) reconnects and is refused again, ten
   * times a second.
   */
  close(reason: string, options: { level: 'warn' | 'debug' } = { level: 'warn' }): void {
    if (this.closed) return
    const text = `closing connection from ${this.remote}: ${reason}`
    if (options.level === 'warn') this.log.warnOncePer(`${this.socket.remoteAddress} ${reason}`, text)
    else this.log.debug(text)
    this.socket.destroy()
    this.release()
  }

  /** Gives back what the connection holds of the node's budget; requests in progress give back theirs when done. */
  private release(): void {
    if (this.closed) return
    this.abort.abort()
    this.budget.cancel(this.budgetHasRoom)
    if (this.admitted) this.finish(this.admitted)
    this.admitted = null
    this.chunks = []
    this.buffered = 0
    // Answers never to be sent; those still being handled run theirs when they complete (complete() sees closed).
    for (const slot of this.slots) if (slot.done) answerSent(slot)
  }

  /** Runs a socket callback's work; an exception closes this connection instead of reaching the event loop. */
  private guard(what: string, work: () => void): void {
    try {
      work()
    } catch (error) {
      this.log.error(`connection ${this.remote}: ${what} failed: ${(error as Error)?.stack ?? error}`)
      this.close(`internal error while ${what}`)
    }
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    this.readFrames()
  }

  /** Takes whole frames while the connection may; pauses the socket when it may not. */
  private readFrames(): void {
    if (this.reading || this.closed) return
    this.reading = true
    try {
      while (!this.closed) {
        if (!this.admitted && !this.admitNext()) break
        const ticket = this.admitted!
        if (this.buffered < 4 + ticket.size) break
        if (!this.budget.takeRequest()) {
          this.waitingForBudget = true
          this.budget.wait('request', this.budgetHasRoom)
          break
        }
        ticket.placed = true
        this.admitted = null
        this.handleFrame(this.take(4 + ticket.size).subarray(4), ticket)
      }
    } finally {
      this.reading = false
    }
    if (this.closed) return
    // An admitted frame is read to its end; a whole one waiting for a place, or none admitted, waits unread.
    const wantBytes =
      this.admitted !== null ? this.buffered < 4 + this.admitted.size : !this.waitingForBudget && !this.blocked()
    if (wantBytes && this.paused) {
      this.paused = false
      this.socket.resume()
    } else if (!wantBytes && !this.paused) {
      this.paused = true
      this.socket.pause()
    }
  }

  /** Reads the next frame's size and takes its bytes of the budget (its place comes once it is in); false when it cannot (yet). */
  private admitNext(): boolean {
    if (this.buffered < 4 || this.waitingForBudget || this.blocked()) return false
    const size = this.peekSize()
    const max = this.services.config.socketRequestMaxBytes
    if (size < 0 || size > max) {
      this.close(`invalid frame size ${size} (socket.request.max.bytes is ${max})`)
      return false
    }
    if (!this.budget.takeBytes(size)) {
      this.waitingForBudget = true
      this.budget.wait(size, this.budgetHasRoom)
      return false
    }
    this.admitted = { size, placed: false, parked: false }
    this.inFlightBytes += size
    return true
  }

  /** Whether this connection's own limits keep it from reading another request now. */
  private blocked(): boolean {
    return (
      this.muting > 0 ||
      this.slots.length >= MAX_IN_FLIGHT_REQUESTS ||
      this.inFlightBytes >= MAX_IN_FLIGHT_BYTES ||
      this.socket.writableNeedDrain
    )
  }

  /** A request is answered (or dropped): its bytes and place go back to the budget. */
  private finish(ticket: Ticket): void {
    this.inFlightBytes -= ticket.size
    this.budget.releaseBytes(ticket.size)
    if (ticket.placed && !ticket.parked) this.budget.releaseRequest()
  }

  private peekSize(): number {
    const first = this.chunks[0]!
    if (first.length >= 4) return first.readInt32BE(0)
    return Buffer.concat(this.chunks, 4).readInt32BE(0)
  }

  private take(size: number): Buffer {
    const first = this.chunks[0]!
    let out: Buffer
    if (first.length >= size) {
      out = first.subarray(0, size)
      if (first.length === size) this.chunks.shift()
      else this.chunks[0] = first.subarray(size)
    } else {
      out = Buffer.allocUnsafe(size)
      let at = 0
      while (at < size) {
        const chunk = this.chunks[0]!
        const n = Math.min(chunk.length, size - at)
        chunk.copy(out, at, 0, n)
        at += n
        if (n === chunk.length) this.chunks.shift()
        else this.chunks[0] = chunk.subarray(n)
      }
    }
    this.buffered -= size
    return out
  }

  private handleFrame(frame: Buffer, ticket: Ticket): void {
    const refuse = (reason: string): void => {
      this.finish(ticket)
      this.close(reason)
    }
    if (frame.length < 8) return refuse(`frame of ${frame.length} bytes is too short for a request header`)
    const dispatcher = this.dispatcher
    const reader = new Reader(frame)
    let header
    try {
      header = decodeRequestHeader(reader, (apiKey) => dispatcher.lookup(apiKey)?.api)
    } catch (error) {
      return refuse(`undecodable request header: ${(error as Error).message}`)
    }
    const { requestApiKey: apiKey, requestApiVersion: version, correlationId } = header
    const entry = dispatcher.lookup(apiKey)
    if (!entry) return refuse(`unknown API key ${apiKey}`)
    if (!inRange(entry.versions, version)) {
      if (apiKey !== API_VERSIONS_KEY) return refuse(`${entry.api.name} v${version} is not supported (supported: ${entry.versions})`)
      // KIP-511: answer with a v0 body carrying UNSUPPORTED_VERSION and our ranges, so the client can retry.
      const slot: Slot = { done: false, buffers: [], close: false, mutes: false, sent: [] }
      this.slots.push(slot)
      this.finish(ticket)
      this.complete(slot, encodeResponseFrame(apiVersions, 0, correlationId, dispatcher.unsupportedApiVersions()))
      return
    }
    let body: unknown
    try {
      body = codecFor(entry.api.request, version).decode(reader)
    } catch (error) {
      const reason = error instanceof DecodeError ? error.message : String(error)
      return refuse(`malformed ${entry.api.name} v${version} request: ${reason}`)
    }
    const slot: Slot = { done: false, buffers: [], close: false, mutes: entry.options.mutesConnection === true, sent: [] }
    this.slots.push(slot)
    if (slot.mutes) this.muting++
    const context: RequestContext = {
      services: this.services,
      apiVersion: version,
      clientId: header.clientId ?? null,
      remote: this.remote,
      remoteHost: this.socket.remoteAddress ?? '',
      signal: this.abort.signal,
      parked: () => {
        if (ticket.parked) return
        ticket.parked = true
        this.budget.releaseRequest()
      },
      onAnswerSent: (callback) => slot.sent.push(callback),
    }
    void this.run(entry, version, correlationId, body, context, slot, ticket)
  }

  /** Runs the handler and answers; never rejects (a failure closes the connection). */
  private async run(entry: HandlerEntry, version: number, correlationId: number, body: unknown, context: RequestContext, slot: Slot, ticket: Ticket): Promise<void> {
    let buffers: Buffer[] | null = null
    try {
      const result: HandlerResult<unknown> = await entry.handle(body, context)
      if (result === CLOSE_CONNECTION) slot.close = true
      buffers = result === NO_RESPONSE || result === CLOSE_CONNECTION ? [] : encodeResponseFrame(entry.api, version, correlationId, result)
    } catch (error) {
      this.log.error(`${entry.api.name} v${version} from ${this.remote} failed: ${(error as Error)?.stack ?? error}`)
      this.close(`internal error while handling ${entry.api.name}`)
      // Never to be sent: what the handler holds until then (answer budget, cache leases) goes back now.
      answerSent(slot)
    } finally {
      this.finish(ticket)
    }
    const answer = buffers
    if (answer) this.guard('answering', () => this.complete(slot, answer))
  }

  private complete(slot: Slot, buffers: Buffer[]): void {
    slot.done = true
    slot.buffers = buffers
    if (this.closed) {
      answerSent(slot)
      return
    }
    if (this.slots[0] !== slot) return
    // Responses completed in the same tick (one group commit acknowledges many produce requests) leave in one
    // writev: the socket stays corked until the tick ends.
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(() => {
        this.corked = false
        this.socket.uncork()
      })
    }
    while (this.slots.length > 0 && this.slots[0]!.done) {
      const next = this.slots.shift()!
      if (next.close) {
        answerSent(next)
        this.close('a request without a response failed (acks=0)')
        return
      }
      const last = next.buffers.length - 1
      next.buffers.forEach((buffer, i) => {
        if (i === last && (next.mutes || next.sent.length > 0)) {
          // Called once the kernel has the answer, or with an error when the socket is destroyed first.
          this.socket.write(buffer, () => {
            answerSent(next)
            if (next.mutes) this.unmute()
          })
        } else this.socket.write(buffer)
      })
      if (last < 0) {
        answerSent(next)
        if (next.mutes) this.muting--
      }
    }
    this.readFrames()
  }

  /** A muting request's answer has been handed to the kernel: the connection may read again. */
  private unmute(): void {
    this.muting--
    this.guard('reading requests', () => this.readFrames())
  }
}

/** Runs a slot's onAnswerSent callbacks, once. */
function answerSent(slot: Slot): void {
  const callbacks = slot.sent
  slot.sent = []
  for (const callback of callbacks) callback()
}

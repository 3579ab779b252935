/**
 * A small Kafka wire client on Brook's own codec: one connection, pipelined requests matched to responses by
 * correlation id, versions negotiated with ApiVersions. The CLI's admin and console commands, the bench harness and
 * (with replication) broker-to-broker traffic use it; applications use a full client such as kafkajs.
 */
import { connect, type Socket } from 'node:net'
import { decodeResponseFrame, encodeRequestFrame } from '../protocol/frame.js'
import { parseRange } from '../protocol/versions.js'
import type { ApiSpec } from '../protocol/schema.js'
import { apiVersions, type ApiVersionsResponse } from '../protocol/messages/api-versions.js'
import { metadata } from '../protocol/messages/metadata.js'
import { brokerRegistration } from '../protocol/messages/broker-registration.js'
import { errorInfo } from '../protocol/errors.js'
import { BROOK_VERSION } from './version.js'
import { hostPort } from './address.js'

export class ConnectionError extends Error {
  override readonly name = 'ConnectionError'
}

/** A request that got no answer within the client's `timeoutMs`; the connection may still be open. */
export class RequestTimedOutError extends ConnectionError {}

/**
 * The largest first answer the client reads. A connection's first request is ApiVersions, whose answer is a few
 * hundred bytes; a size above this is not a Kafka answer: text read as a size is far larger (`HTTP` is
 * 1,213,486,160), and waiting for that many bytes would wait out the request timeout. Later answers are not held to
 * it: a Fetch answer carries at least one batch whatever its max bytes (minOneMessage), and a topic's
 * max.message.bytes, like socket.request.max.bytes, may be set up to 2 GiB. 100 MiB is librdkafka's
 * receive.message.max.bytes default.
 */
export const MAX_RESPONSE_BYTES = 100 * 1024 * 1024

const INT32_MAX = 2 ** 31 - 1

/** A Kafka error code a broker answered, thrown by `checkError`; its message names the request, the error and why. */
export class BrokerError extends Error {
  override readonly name = 'BrokerError'
  constructor(
    message: string,
    readonly errorCode: number,
  ) {
    super(message)
  }
}

interface Pending {
  api: ApiSpec
  version: number
  resolve: (body: unknown) => void
  reject: (error: Error) => void
}

export interface ClientOptions {
  clientId?: string
  /** Fails a connect or a request that takes longer. */
  timeoutMs?: number
  /** The local IP address the connection is made from; by default the operating system picks one. */
  localAddress?: string
  /** Abandons a connect still under way (the socket closed, the promise rejected); a connected client is not affected. */
  signal?: AbortSignal
}

export class KafkaClient {
  /** The next request's correlation id: 0 up to INT32_MAX, then 0 again (a replica connection sends ~10^3 a second). */
  private correlationId = 0
  /** Whether the ids went round once: then every id in range may be a late answer's. */
  private wrapped = false
  private readonly pending = new Map<number, Pending>()
  private chunks: Buffer[] = []
  private buffered = 0
  private brokerVersions = new Map<number, { min: number; max: number }>()
  private failure: Error | null = null
  /** Whether a response frame arrived yet: a connection that ends before one ended before ApiVersions was answered. */
  private answered = false

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    private readonly options: Required<Omit<ClientOptions, 'localAddress' | 'signal'>>,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (error) => this.ended(`failed: ${error.message}`))
    socket.on('close', () => this.ended('closed'))
  }

  /**
   * Connects and negotiates versions (ApiVersions v3). Rejects with a ConnectionError naming the address when the
   * connection is refused, fails, or nothing answers within `timeoutMs` (`...: accepted the connection but did not
   * answer ApiVersions within 30 s ...`, with the likely reasons), or when `signal` aborts first.
   */
  static async connect(host: string, port: number, options: ClientOptions = {}): Promise<KafkaClient> {
    const resolved = { clientId: options.clientId ?? 'brook-cli', timeoutMs: options.timeoutMs ?? 30_000 }
    const address = hostPort(host, port)
    const { signal } = options
    if (signal?.aborted) throw new ConnectionError(`connecting to ${address} was abandoned`)
    const socket = await new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host, port, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) })
      const settle = (error: Error | null) => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', abandon)
        if (error === null) return resolve(socket)
        socket.destroy()
        reject(error)
      }
      const abandon = () => settle(new ConnectionError(`connecting to ${address} was abandoned`))
      const timer = setTimeout(() => settle(new ConnectionError(`cannot connect to a broker at ${address}: timed out`)), resolved.timeoutMs)
      signal?.addEventListener('abort', abandon)
      socket.once('connect', () => {
        socket.setNoDelay(true)
        settle(null)
      })
      socket.once('error', (error: NodeJS.ErrnoException) => settle(new ConnectionError(`cannot connect to a broker at ${address}: ${error.code ?? error.message}`)))
    })
    const client = new KafkaClient(socket, address, resolved)
    // A peer that accepts the connection but does not answer (not a Kafka node, or a hung one) must not keep the
    // socket, and with it the process, alive; neither must one whose connect was abandoned.
    const abandon = () => client.close()
    signal?.addEventListener('abort', abandon)
    let versions: ApiVersionsResponse
    try {
      versions = await client.request<object, ApiVersionsResponse>(apiVersions, 3, {
        clientSoftwareName: 'brook',
        clientSoftwareVersion: BROOK_VERSION,
      })
    } catch (error) {
      client.close()
      throw error instanceof RequestTimedOutError ? unanswered(address, resolved.timeoutMs) : error
    } finally {
      signal?.removeEventListener('abort', abandon)
    }
    for (const key of versions.apiKeys) client.brokerVersions.set(key.apiKey, { min: key.minVersion, max: key.maxVersion })
    return client
  }

  /** Whether the broker implements a version of `api` within `ours` (ApiVersions said so). */
  supports(api: ApiSpec, ours: string = api.request.validVersions): boolean {
    const theirs = this.brokerVersions.get(api.apiKey)
    const mine = parseRange(ours)
    return theirs !== undefined && theirs.max >= mine.min && theirs.min <= mine.max
  }

  /**
   * Whether the peer is a controller listener, which serves the controller quorum only: its ApiVersions lists
   * BrokerRegistration (API key 62) and no Metadata (3).
   */
  get isControllerListener(): boolean {
    return !this.brokerVersions.has(metadata.apiKey) && this.brokerVersions.has(brokerRegistration.apiKey)
  }

  /**
   * The highest version both sides implement, or an error naming the API (and, at a controller listener, saying so
   * and to give a node's client port).
   */
  version(api: ApiSpec, ours: string = api.request.validVersions): number {
    if (!this.supports(api, ours)) {
      const hint = this.isControllerListener ? `; ${CONTROLLER_LISTENER}` : ''
      throw new Error(`the broker at ${this.address} does not support ${api.name} (versions ${ours})${hint}`)
    }
    return Math.min(this.brokerVersions.get(api.apiKey)!.max, parseRange(ours).max)
  }

  /**
   * Sends `body` as `api` at `version` and resolves with the decoded answer. Rejects with a RequestTimedOutError when
   * none comes within `options.timeoutMs` (default: the client's `timeoutMs`), a ConnectionError when the connection
   * is lost, or the decoding error of an answer that cannot be read.
   */
  request<Req, Res>(api: ApiSpec, version: number, body: Req, options: { timeoutMs?: number } = {}): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure)
    const correlationId = this.nextCorrelationId()
    const frame = encodeRequestFrame(api, version, correlationId, this.options.clientId, body)
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId)
        reject(new RequestTimedOutError(`${api.name} to ${this.address} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(correlationId, {
        api,
        version,
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as Res)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.write(frame)
    })
  }

  /** Sends a request that gets no response (Produce with acks=0). */
  send<Req>(api: ApiSpec, version: number, body: Req): void {
    this.write(encodeRequestFrame(api, version, this.nextCorrelationId(), this.options.clientId, body))
  }

  /** A correlation id for the next request; after INT32_MAX (the field is an int32) the ids start again at 0. */
  private nextCorrelationId(): number {
    const id = this.correlationId
    if (id === INT32_MAX) this.wrapped = true
    this.correlationId = id === INT32_MAX ? 0 : id + 1
    return id
  }

  /**
   * Writes a frame's buffers corked, so they leave in one writev: written one by one, each would be a syscall and,
   * with TCP_NODELAY, a segment of its own that wakes the broker for a few bytes of the frame.
   */
  private write(frame: readonly Buffer[]): void {
    this.socket.cork()
    for (const buffer of frame) this.socket.write(buffer)
    this.socket.uncork()
  }

  /** Whether the connection is gone (closed or failed): every request on it fails, a new one is needed. */
  get failed(): boolean {
    return this.failure !== null
  }

  close(): void {
    this.socket.destroy()
  }

  private fail(error: Error): void {
    if (this.failure) return
    this.failure = error
    for (const pending of this.pending.values()) pending.reject(error)
    this.pending.clear()
  }

  /** The connection closed or failed (`how`); before any answer, the peer is likely no Kafka listener, and is told so. */
  private ended(how: string): void {
    this.fail(
      new ConnectionError(
        this.answered
          ? `connection to ${this.address} ${how}`
          : `connection to ${this.address} ${how} before ApiVersions was answered: it is not a Kafka listener, or one that turned this connection away (a TLS listener, or a connection limit reached)`,
      ),
    )
  }

  /**
   * Fails every request at once with an error saying that the peer is not a Kafka broker, quoting the start of what it
   * sent (`bytes`, from the frame's size on), and drops the connection: the rest of its bytes cannot be framed.
   */
  private notKafka(bytes: Buffer, why: string): void {
    this.fail(new ConnectionError(`the server at ${this.address} did not answer as a Kafka broker: its answer began with ${quoted(bytes)}, ${why}`))
    this.chunks = []
    this.buffered = 0
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
    while (this.buffered >= 4) {
      const first = this.chunks[0]!
      const size = (first.length >= 4 ? first : Buffer.concat(this.chunks, 4)).readInt32BE(0)
      // A frame holds at least its correlation id (ResponseHeader v0); the first one answers ApiVersions.
      if (size < 4 || (!this.answered && size > MAX_RESPONSE_BYTES)) {
        return this.notKafka(Buffer.concat(this.chunks, Math.min(this.buffered, QUOTED_BYTES)), `which read as a Kafka response would be ${size} bytes long (${size < 4 ? 'a response is at least 4' : `an answer to ApiVersions is at most ${MAX_RESPONSE_BYTES}`})`)
      }
      if (this.buffered < 4 + size) return
      const all = this.chunks.length === 1 ? first : Buffer.concat(this.chunks, this.buffered)
      const frame = all.subarray(4, 4 + size)
      this.chunks = all.length > 4 + size ? [all.subarray(4 + size)] : []
      this.buffered -= 4 + size
      this.deliver(frame)
    }
  }

  private deliver(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0)
    // Ids run from 0 up, one a request: one this client never gave out answers nothing it asked.
    if (correlationId < 0 || (!this.wrapped && correlationId >= this.correlationId)) {
      const size = Buffer.alloc(4)
      size.writeInt32BE(frame.length)
      return this.notKafka(Buffer.concat([size, frame.subarray(0, QUOTED_BYTES - 4)]), `an answer to no request sent (correlation id ${correlationId})`)
    }
    this.answered = true
    const pending = this.pending.get(correlationId)
    // A late answer to a request that timed out.
    if (!pending) return
    this.pending.delete(correlationId)
    try {
      pending.resolve(decodeResponseFrame(pending.api, pending.version, frame).body)
    } catch (error) {
      pending.reject(error as Error)
    }
  }
}

/**
 * Turns a Kafka error code into a BrokerError `<context>: <NAME> (<message>)`, for admin commands that stop on the
 * first error.
 */
export function checkError(errorCode: number, context: string, message?: string | null): void {
  if (errorCode !== 0) throw new BrokerError(`${context}: ${errorText(errorCode, message)}`, errorCode)
}

/** How many of the bytes of an answer that cannot be Kafka's are quoted in the error. */
const QUOTED_BYTES = 48

/** An answer's first bytes in words: its first line, quoted, when that is printable text; otherwise the first 16 in hex. */
function quoted(bytes: Buffer): string {
  const line = bytes.toString('latin1').split(/\r?\n/)[0]!
  if (line.length >= 4 && /^[\x20-\x7e]+$/.test(line)) return `'${line}'`
  return `bytes ${bytes.subarray(0, 16).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`
}

/** What a client pointed at a controller listener is told. */
export const CONTROLLER_LISTENER = "it is a controller listener, which serves the controller quorum only: give a node's client port"

/** A Kafka error code in words: `<NAME> (<the broker's message, or the error's own text>)`. */
export function errorText(errorCode: number, message?: string | null): string {
  const info = errorInfo(errorCode)
  return `${info.name} (${message ?? info.message})`
}

/**
 * Why a node that accepted the connection never answered ApiVersions, in words: it is not a Kafka listener, a node
 * paused (SIGSTOP) or hung, whose kernel still accepts connections, as a partition leader's may until the controller
 * fences it, or a node not serving clients yet. A cluster node (Brook's, as Kafka's KRaft brokers) reads no client request until its
 * controller quorum has a leader and that leader has let it in (broker/broker.ts), so a node started before enough of
 * its voters hangs every client this way.
 */
function unanswered(address: string, timeoutMs: number): ConnectionError {
  const after = timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`
  return new ConnectionError(
    `${address} accepted the connection but did not answer ApiVersions within ${after}: it is not a Kafka listener, a node paused or hung, or a cluster node not serving clients yet (one serves once its controller quorum has a leader, which needs a majority of the voters running)`,
  )
}

/**
 * One client connection: splits frames, decodes headers, hands requests to the dispatcher, and writes responses in
 * request order even when handlers finish out of order (the protocol guide: "responses will return in that order").
 *
 *   bytes -> [size | frame] -> header -> handler (started synchronously, in arrival order) -> slot
 *   slots: [ #7 done | #8 waiting | #9 done ]  -> only #7 is written until #8 completes
 *
 * Handlers start synchronously in arrival order, so two produce requests on one connection append in the order they
 * were sent. Frames with a negative size or one above `socket.request.max.bytes` close the connection before
 * anything is allocated for them, as Kafka's NetworkReceive does; so do undecodable headers or bodies, unknown API
 * keys and unsupported versions (an ApiVersions request of any version gets an answer instead, per KIP-511).
 */
import type { Socket } from 'node:net'
import { Reader, DecodeError } from '../protocol/reader.js'
import { codecFor } from '../protocol/codec.js'
import { API_VERSIONS_KEY, decodeRequestHeader, encodeResponseFrame } from '../protocol/frame.js'
import { inRange } from '../protocol/versions.js'
import { apiVersions } from '../protocol/messages/api-versions.js'
import { CLOSE_CONNECTION, NO_RESPONSE, type RequestContext } from './handler.js'
import type { Broker } from './broker.js'
import type { Logger } from './logger.js'

interface Slot {
  done: boolean
  buffers: Buffer[]
  close: boolean
}

/** Requests a connection may have in progress before we stop reading from it. */
const MAX_IN_FLIGHT = 128

export class Connection {
  private chunks: Buffer[] = []
  private buffered = 0
  private readonly slots: Slot[] = []
  private readonly abort = new AbortController()
  private paused = false
  private corked = false
  readonly remote: string

  constructor(
    private readonly socket: Socket,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => this.maybeResume())
    socket.on('error', (error) => this.log.debug(`connection ${this.remote}: ${error.message}`))
    socket.on('close', () => this.abort.abort())
  }

  get closed(): boolean {
    return this.abort.signal.aborted
  }

  close(reason: string): void {
    if (this.closed) return
    this.log.warn(`closing connection from ${this.remote}: ${reason}`)
    this.abort.abort()
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    while (this.buffered >= 4 && !this.closed) {
      const size = this.peekSize()
      if (size < 0 || size > this.broker.config.socketRequestMaxBytes) {
        this.close(`invalid frame size ${size} (socket.request.max.bytes is ${this.broker.config.socketRequestMaxBytes})`)
        return
      }
      if (this.buffered < 4 + size) return
      const frame = this.take(4 + size).subarray(4)
      this.handleFrame(frame)
    }
    this.maybePause()
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

  private handleFrame(frame: Buffer): void {
    if (frame.length < 8) {
      this.close(`frame of ${frame.length} bytes is too short for a request header`)
      return
    }
    const dispatcher = this.broker.dispatcher
    const reader = new Reader(frame)
    let header
    try {
      header = decodeRequestHeader(reader, (apiKey) => dispatcher.lookup(apiKey)?.api)
    } catch (error) {
      this.close(`undecodable request header: ${(error as Error).message}`)
      return
    }
    const { requestApiKey: apiKey, requestApiVersion: version, correlationId } = header
    const entry = dispatcher.lookup(apiKey)
    if (!entry) {
      this.close(`unknown API key ${apiKey}`)
      return
    }
    const slot: Slot = { done: false, buffers: [], close: false }
    if (!inRange(entry.versions, version)) {
      if (apiKey !== API_VERSIONS_KEY) {
        this.close(`${entry.api.name} v${version} is not supported (supported: ${entry.versions})`)
        return
      }
      // KIP-511: answer with a v0 body carrying UNSUPPORTED_VERSION and our ranges, so the client can retry.
      this.slots.push(slot)
      this.complete(slot, encodeResponseFrame(apiVersions, 0, correlationId, dispatcher.unsupportedApiVersions()))
      return
    }
    let body: unknown
    try {
      body = codecFor(entry.api.request, version).decode(reader)
    } catch (error) {
      const reason = error instanceof DecodeError ? error.message : String(error)
      this.close(`malformed ${entry.api.name} v${version} request: ${reason}`)
      return
    }
    this.slots.push(slot)
    const context: RequestContext = {
      broker: this.broker,
      apiVersion: version,
      clientId: header.clientId ?? null,
      remote: this.remote,
      remoteHost: this.socket.remoteAddress ?? '',
      signal: this.abort.signal,
    }
    const fail = (error: unknown): void => {
      this.log.error(`${entry.api.name} v${version} from ${this.remote} failed: ${(error as Error)?.stack ?? error}`)
      this.close(`internal error while handling ${entry.api.name}`)
    }
    try {
      Promise.resolve(entry.handle(body, context)).then((result) => {
        if (result === NO_RESPONSE) this.complete(slot, [])
        else if (result === CLOSE_CONNECTION) {
          slot.close = true
          this.complete(slot, [])
        } else this.complete(slot, encodeResponseFrame(entry.api, version, correlationId, result))
      }, fail)
    } catch (error) {
      fail(error)
    }
  }

  private complete(slot: Slot, buffers: Buffer[]): void {
    slot.done = true
    slot.buffers = buffers
    if (this.closed) return
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
        this.close('a request without a response failed (acks=0)')
        return
      }
      for (const buffer of next.buffers) this.socket.write(buffer)
    }
    this.maybeResume()
  }

  private maybePause(): void {
    if (!this.paused && (this.slots.length >= MAX_IN_FLIGHT || this.socket.writableNeedDrain)) {
      this.paused = true
      this.socket.pause()
    }
  }

  private maybeResume(): void {
    if (this.paused && this.slots.length < MAX_IN_FLIGHT / 2 && !this.socket.writableNeedDrain) {
      this.paused = false
      this.socket.resume()
    }
  }
}

/**
 * A lean pipelined connection for load generation: sends already-encoded request frames, matches response frames to
 * requests by correlation id, and hands each response payload to the caller's parser. client/kafka-client.ts encodes and decodes every
 * request and arms a timer for each; here the caller decides what to decode, so the client costs the broker's CPU
 * as little as possible (both share the machine's cores).
 *
 *   frame = size:int32 | apiKey:int16 | apiVersion:int16 | correlationId:int32 | rest of header | body
 *
 * A pre-encoded frame is resent with a fresh 12-byte head (size, key, version, new correlation id) followed by the
 * unchanged rest by reference, so the bytes already queued on the socket are never modified.
 *
 * Responses are read straight into one reusable receive buffer (the socket's `onread` option), grown to hold the
 * largest frame, and parsed in place: no per-chunk buffers, no copy to assemble a 32 MiB Fetch response. On a 2-core
 * machine every cycle the client spends is taken from the broker. So a payload is valid only while the caller's
 * `parse` runs, synchronously, as the frame arrives.
 *
 *   buffer: [ parsed, free to reuse | start: unparsed frames ... end | free: the next read lands here ]
 */
import { connect, type Socket } from 'node:net'

const HEAD_BYTES = 12
const CORRELATION_ID_AT = 8
/** Free space each read gets at least, unless a frame being received needs less to complete. */
const MIN_READ_BYTES = 256 * 1024
/** A response frame (size prefix included) outside these bounds means the stream is broken, not a big answer. */
const MIN_FRAME_BYTES = 8
const MAX_FRAME_BYTES = 1024 * 1024 * 1024

interface Pending {
  parse(payload: Buffer): unknown
  resolve(value: unknown): void
  reject(error: Error): void
}

export class WireConnection {
  private correlationId = 1
  private readonly pending = new Map<number, Pending>()
  private socket!: Socket
  private buffer = Buffer.allocUnsafe(4 * MIN_READ_BYTES)
  private start = 0
  private end = 0
  /** Bytes of the frame at `start` (size prefix included) once its size is known and it is incomplete; else 0. */
  private wanted = 0
  private failure: Error | null = null

  private constructor() {}

  static async connect(host: string, port: number): Promise<WireConnection> {
    const connection = new WireConnection()
    const socket = connect({
      host,
      port,
      onread: {
        buffer: () => connection.readTarget(),
        callback: (bytes: number) => {
          connection.onRead(bytes)
          return true
        },
      },
    })
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.setNoDelay(true)
    socket.on('error', (error) => connection.fail(error))
    socket.on('close', () => connection.fail(new Error('connection closed by the broker')))
    connection.socket = socket
    return connection
  }

  /** Sends `frame` (one buffer, as encoded once) under a new correlation id; resolves with what `parse` makes of the response. */
  resend<T>(frame: Buffer, parse: (payload: Buffer) => T): Promise<T> {
    const head = Buffer.allocUnsafe(HEAD_BYTES)
    frame.copy(head, 0, 0, HEAD_BYTES)
    const correlationId = this.correlationId++
    head.writeInt32BE(correlationId, CORRELATION_ID_AT)
    return this.send([head, frame.subarray(HEAD_BYTES)], correlationId, parse)
  }

  /** A correlation id for a frame the caller encodes itself, then passes to `send`. */
  nextCorrelationId(): number {
    return this.correlationId++
  }

  /** Sends an encoded frame; `parse` reads the response payload (the size prefix removed) as soon as it arrives. */
  send<T>(buffers: readonly Buffer[], correlationId: number, parse: (payload: Buffer) => T): Promise<T> {
    if (this.failure) return Promise.reject(this.failure)
    return new Promise<T>((resolve, reject) => {
      this.pending.set(correlationId, { parse, resolve: resolve as (value: unknown) => void, reject })
      this.socket.cork()
      for (const buffer of buffers) this.socket.write(buffer)
      this.socket.uncork()
    })
  }

  close(): void {
    this.failure ??= new Error('connection closed')
    this.socket.destroy()
  }

  private fail(error: Error): void {
    if (this.failure === null) this.failure = error
    for (const pending of this.pending.values()) pending.reject(this.failure)
    this.pending.clear()
  }

  /** Where the next read lands: after `end`, once there is room (for the whole frame being received, if known). */
  private readTarget(): Buffer {
    const roomy =
      this.wanted > 0 ? this.start + this.wanted <= this.buffer.length : this.buffer.length - this.end >= MIN_READ_BYTES
    if (!roomy) {
      const unparsed = this.end - this.start
      const size = Math.max(this.wanted, unparsed + MIN_READ_BYTES)
      const target = size > this.buffer.length ? Buffer.allocUnsafe(Math.max(size, 2 * this.buffer.length)) : this.buffer
      // Buffer#copy handles the overlap when the unparsed bytes move to the front of the same buffer.
      this.buffer.copy(target, 0, this.start, this.end)
      this.buffer = target
      this.start = 0
      this.end = unparsed
    }
    return this.buffer.subarray(this.end)
  }

  private onRead(bytes: number): void {
    this.end += bytes
    while (this.end - this.start >= 4) {
      const size = 4 + this.buffer.readInt32BE(this.start)
      if (size < MIN_FRAME_BYTES || size > MAX_FRAME_BYTES) {
        this.fail(new Error(`response frame of ${size} bytes`))
        this.socket.destroy()
        return
      }
      if (this.end - this.start < size) {
        this.wanted = size
        return
      }
      const payload = this.buffer.subarray(this.start + 4, this.start + size)
      this.start += size
      this.deliver(payload)
    }
    this.wanted = 0
    if (this.start === this.end) this.start = this.end = 0
  }

  private deliver(payload: Buffer): void {
    const correlationId = payload.readInt32BE(0)
    const pending = this.pending.get(correlationId)
    if (!pending) {
      this.fail(new Error(`response with unknown correlation id ${correlationId}`))
      this.socket.destroy()
      return
    }
    this.pending.delete(correlationId)
    try {
      pending.resolve(pending.parse(payload))
    } catch (error) {
      pending.reject(error as Error)
    }
  }
}

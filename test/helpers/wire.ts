/**
 * Hand-built Kafka frames and a raw socket, for the bad-input tests: the bytes come from the protocol guide and the
 * message JSON (`reference/kafka-message-specs`), never from Brook's codec, so a codec bug cannot hide itself.
 *
 *   request frame = size:int32 | apiKey:int16 | apiVersion:int16 | correlationId:int32 | clientId:int16-string
 *                   [| tagged fields: uvarint count, when the version is flexible] | body
 */
import { connect, type Socket } from 'node:net'
import snappy from 'snappy'

/** A small big-endian byte builder. */
export class Bytes {
  private readonly parts: Buffer[] = []

  private push(size: number, write: (buffer: Buffer) => void): this {
    const buffer = Buffer.alloc(size)
    write(buffer)
    this.parts.push(buffer)
    return this
  }

  int8(value: number): this {
    return this.push(1, (b) => b.writeInt8(value))
  }

  int16(value: number): this {
    return this.push(2, (b) => b.writeInt16BE(value))
  }

  int32(value: number): this {
    return this.push(4, (b) => b.writeInt32BE(value))
  }

  uint32(value: number): this {
    return this.push(4, (b) => b.writeUInt32BE(value))
  }

  int64(value: bigint): this {
    return this.push(8, (b) => b.writeBigInt64BE(value))
  }

  /** Unsigned LEB128 varint (compact lengths, tag counts). */
  uvarint(value: number): this {
    const bytes: number[] = []
    do {
      let byte = value & 0x7f
      value = Math.floor(value / 128)
      if (value > 0) byte |= 0x80
      bytes.push(byte)
    } while (value > 0)
    this.parts.push(Buffer.from(bytes))
    return this
  }

  /** Zig-zag varint (record fields). */
  varint(value: number): this {
    return this.uvarint(value >= 0 ? value * 2 : -value * 2 - 1)
  }

  /** Zig-zag varlong of an int64 (a record's timestampDelta, ByteUtils.writeVarlong): up to 10 bytes. */
  varlong(value: bigint): this {
    let zigzag = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n))
    const bytes: number[] = []
    for (; zigzag >= 0x80n; zigzag >>= 7n) bytes.push(Number(zigzag & 0x7fn) | 0x80)
    bytes.push(Number(zigzag))
    this.parts.push(Buffer.from(bytes))
    return this
  }

  /** STRING / NULLABLE_STRING: int16 length, then UTF-8. */
  string(value: string | null): this {
    if (value === null) return this.int16(-1)
    const bytes = Buffer.from(value)
    return this.int16(bytes.length).raw(bytes)
  }

  /** BYTES / RECORDS (non-flexible): int32 length, then the bytes. */
  bytes(value: Buffer | null): this {
    if (value === null) return this.int32(-1)
    return this.int32(value.length).raw(value)
  }

  raw(value: Buffer | Uint8Array | number[]): this {
    this.parts.push(Buffer.from(value as Uint8Array))
    return this
  }

  get length(): number {
    return this.parts.reduce((sum, part) => sum + part.length, 0)
  }

  build(): Buffer {
    return Buffer.concat(this.parts)
  }
}

export interface HeaderSpec {
  apiKey: number
  apiVersion: number
  correlationId: number
  clientId?: string | null
  /** Request header v2 (flexible versions): adds the empty tagged-field section after clientId. */
  flexible?: boolean
}

/** A whole request frame: size prefix, request header v1 (or v2), body. */
export function requestFrame(header: HeaderSpec, body: Buffer = Buffer.alloc(0)): Buffer {
  const bytes = new Bytes()
    .int16(header.apiKey)
    .int16(header.apiVersion)
    .int32(header.correlationId)
    .string(header.clientId === undefined ? 'bad-input' : header.clientId)
  if (header.flexible) bytes.uvarint(0)
  bytes.raw(body)
  return new Bytes().int32(bytes.length).raw(bytes.build()).build()
}

/** CRC-32C (Castagnoli), bitwise, written out here so the test does not trust the broker's CRC code. */
export function crc32cOf(data: Buffer): number {
  let crc = 0xffffffff
  for (const byte of data) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

/** One record as DefaultRecord.java lays it out; the fields a test leaves out are those of a plain record. */
export interface RecordSpec {
  offsetDelta: number
  /** A bigint: any int64, as a producer's wrapped long subtraction leaves it. */
  timestampDelta?: number | bigint
  /** Absent or null: a null key (length -1). */
  key?: Buffer | null
  value?: Buffer | null
  headers?: [string, Buffer | null][]
}

/** A record's bytes: length varint, then attributes, timestampDelta, offsetDelta, key, value, header count, headers. */
export function recordBytes(spec: RecordSpec): Buffer {
  const body = new Bytes().int8(0)
  if (typeof spec.timestampDelta === 'bigint') body.varlong(spec.timestampDelta)
  else body.varint(spec.timestampDelta ?? 0)
  body.varint(spec.offsetDelta)
  const field = (bytes: Buffer | null | undefined): void => {
    if (bytes === null || bytes === undefined) body.varint(-1)
    else body.varint(bytes.length).raw(bytes)
  }
  field(spec.key)
  field(spec.value)
  body.varint(spec.headers?.length ?? 0)
  for (const [key, value] of spec.headers ?? []) {
    field(Buffer.from(key))
    field(value)
  }
  const built = body.build()
  return new Bytes().varint(built.length).raw(built).build()
}

/** A batch header around `records` (the records section as it goes on the wire: compressed, if the codec says so). */
export interface BatchSpec {
  records: Buffer
  count: number
  /** Defaults to count - 1. */
  lastOffsetDelta?: number
  /** Codec bits and flags; defaults to 0 (uncompressed, CreateTime). */
  attributes?: number
  baseTimestamp?: bigint
  /** Defaults to baseTimestamp. */
  maxTimestamp?: bigint
  magic?: number
}

/** A magic-2 batch as DefaultRecordBatch.java lays it out, with a valid CRC-32C, so only the intended damage remains. */
export function batchBytes(spec: BatchSpec): Buffer {
  const baseTimestamp = spec.baseTimestamp ?? 1_700_000_000_000n
  const afterCrc = new Bytes()
    .int16(spec.attributes ?? 0)
    .int32(spec.lastOffsetDelta ?? spec.count - 1)
    .int64(baseTimestamp)
    .int64(spec.maxTimestamp ?? baseTimestamp)
    .int64(-1n) // producerId
    .int16(-1) // producerEpoch
    .int32(-1) // baseSequence
    .int32(spec.count)
    .raw(spec.records)
    .build()
  const afterLength = new Bytes().int32(-1).int8(spec.magic ?? 2).uint32(crc32cOf(afterCrc)).raw(afterCrc).build()
  return new Bytes().int64(0n).int32(afterLength.length).raw(afterLength).build()
}

/**
 * One uncompressed magic-2 record batch with `values` as records (null keys, no headers), laid out as
 * DefaultRecordBatch.java describes. Tests damage a copy of it to make bad batches.
 */
export function handBuiltBatch(values: string[], options: { magic?: number; timestamp?: bigint } = {}): Buffer {
  const records = Buffer.concat(values.map((value, i) => recordBytes({ offsetDelta: i, value: Buffer.from(value) })))
  return batchBytes({ records, count: values.length, magic: options.magic, baseTimestamp: options.timestamp })
}

/** Produce v3-8 body (non-flexible) for one topic-partition. */
export function produceBody(topic: string, partition: number, records: Buffer, acks = -1): Buffer {
  return new Bytes()
    .string(null) // transactionalId
    .int16(acks)
    .int32(10_000) // timeoutMs
    .int32(1) // one topic
    .string(topic)
    .int32(1) // one partition
    .int32(partition)
    .bytes(records)
    .build()
}

/**
 * Reads the partition error code out of a Produce v3-8 response payload (after the size prefix), by walking the
 * layout of ProduceResponse.json: correlationId, [topic name, [index, errorCode, ...]].
 */
export function produceResponseError(payload: Buffer): { correlationId: number; errorCode: number } {
  const correlationId = payload.readInt32BE(0)
  let at = 4
  at += 4 // topics array length (1)
  at += 2 + payload.readInt16BE(at) // topic name
  at += 4 // partitions array length (1)
  at += 4 // partition index
  return { correlationId, errorCode: payload.readInt16BE(at) }
}

/** The first partition's answer in a Produce v8 response payload (non-flexible), with what v8 adds (KIP-467). */
export interface ProduceAnswerV8 {
  correlationId: number
  errorCode: number
  baseOffset: bigint
  recordErrors: { batchIndex: number; message: string | null }[]
  errorMessage: string | null
}

/**
 * Walks a Produce v8 response as ProduceResponse.json lays it out: correlationId, [topic name, [index, errorCode,
 * baseOffset, logAppendTimeMs, logStartOffset, [batchIndex, batchIndexErrorMessage], errorMessage]], throttleTimeMs.
 */
export function produceResponseV8(payload: Buffer): ProduceAnswerV8 {
  let at = 0
  const int16 = (): number => ((at += 2), payload.readInt16BE(at - 2))
  const int32 = (): number => ((at += 4), payload.readInt32BE(at - 4))
  const int64 = (): bigint => ((at += 8), payload.readBigInt64BE(at - 8))
  const string = (): string | null => {
    const length = int16()
    if (length < 0) return null
    at += length
    return payload.toString('utf8', at - length, at)
  }
  const correlationId = int32()
  int32() // topics (1)
  string() // topic name
  int32() // partitions (1)
  int32() // partition index
  const errorCode = int16()
  const baseOffset = int64()
  int64() // logAppendTimeMs
  int64() // logStartOffset
  const recordErrors = Array.from({ length: int32() }, () => ({ batchIndex: int32(), message: string() }))
  return { correlationId, errorCode, baseOffset, recordErrors, errorMessage: string() }
}

/** Fetch v4 body (non-flexible, FetchRequest.json) for one partition, without waiting (maxWaitMs 0). */
export function fetchBody(topic: string, partition: number, offset: bigint, maxBytes: number): Buffer {
  return new Bytes()
    .int32(-1) // replicaId
    .int32(0) // maxWaitMs
    .int32(1) // minBytes
    .int32(maxBytes)
    .int8(0) // isolationLevel: read_uncommitted
    .int32(1) // one topic
    .string(topic)
    .int32(1) // one partition
    .int32(partition)
    .int64(offset)
    .int32(maxBytes) // partitionMaxBytes
    .build()
}

/**
 * Reads a Fetch v4 response payload for one partition (FetchResponse.json: correlationId, throttleTimeMs,
 * [topic, [partitionIndex, errorCode, highWatermark, lastStableOffset, [abortedTransactions], records]]).
 */
export function fetchResponsePartition(payload: Buffer): { correlationId: number; errorCode: number; highWatermark: bigint; records: Buffer } {
  const correlationId = payload.readInt32BE(0)
  let at = 8 // correlationId, throttleTimeMs
  at += 4 // topics array length (1)
  at += 2 + payload.readInt16BE(at) // topic name
  at += 4 // partitions array length (1)
  at += 4 // partition index
  const errorCode = payload.readInt16BE(at)
  const highWatermark = payload.readBigInt64BE(at + 2)
  at += 2 + 8 + 8 // errorCode, highWatermark, lastStableOffset
  const aborted = payload.readInt32BE(at)
  at += 4 + Math.max(0, aborted) * 16
  const size = payload.readInt32BE(at)
  const records = size < 0 ? Buffer.alloc(0) : payload.subarray(at + 4, at + 4 + size)
  return { correlationId, errorCode, highWatermark, records }
}

/**
 * ElectLeaders v0 or v1 request body (ElectLeadersRequest.json): v1's electionType (int8; v0 has none), the topics'
 * partitions (int32 count, -1 for null: every partition), timeoutMs.
 */
export function electLeadersBody(options: { version: 0 | 1; electionType?: number; topicPartitions: { topic: string; partitions: number[] }[] | null; timeoutMs?: number }): Buffer {
  const bytes = new Bytes()
  if (options.version >= 1) bytes.int8(options.electionType ?? 0)
  if (options.topicPartitions === null) bytes.int32(-1)
  else {
    bytes.int32(options.topicPartitions.length)
    for (const { topic, partitions } of options.topicPartitions) {
      bytes.string(topic).int32(partitions.length)
      for (const partition of partitions) bytes.int32(partition)
    }
  }
  return bytes.int32(options.timeoutMs ?? 60_000).build()
}

export interface ElectLeadersAnswer {
  correlationId: number
  /** v1+; undefined for v0. */
  errorCode: number | undefined
  results: { topic: string; partitionId: number; errorCode: number; errorMessage: string | null }[]
}

/**
 * An ElectLeaders v0 or v1 response payload (response header v0): throttleTimeMs, v1's errorCode, then per topic its
 * name and per partition its id, errorCode and errorMessage (nullable string).
 */
export function electLeadersResponse(payload: Buffer, version: 0 | 1): ElectLeadersAnswer {
  let at = 0
  const int16 = () => ((at += 2), payload.readInt16BE(at - 2))
  const int32 = () => ((at += 4), payload.readInt32BE(at - 4))
  const string = (): string | null => {
    const length = int16()
    if (length < 0) return null
    at += length
    return payload.toString('utf8', at - length, at)
  }
  const correlationId = int32()
  int32() // throttleTimeMs
  const errorCode = version >= 1 ? int16() : undefined
  const results: ElectLeadersAnswer['results'] = []
  for (let topics = int32(); topics > 0; topics--) {
    const topic = string()!
    for (let partitions = int32(); partitions > 0; partitions--) {
      const partitionId = int32()
      const partitionError = int16()
      results.push({ topic, partitionId, errorCode: partitionError, errorMessage: string() })
    }
  }
  if (at !== payload.length) throw new Error(`${payload.length - at} bytes after the ElectLeaders response`)
  return { correlationId, errorCode, results }
}

/** A socket that sends raw bytes and reads whole response frames. */
export class RawConnection {
  private buffered = Buffer.alloc(0)
  private readonly frames: Buffer[] = []
  private waiting: (() => void) | null = null
  private ended = false
  readonly closed: Promise<void>

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readInt32BE(0)) {
        const size = this.buffered.readInt32BE(0)
        this.frames.push(this.buffered.subarray(4, 4 + size))
        this.buffered = this.buffered.subarray(4 + size)
      }
      this.wake()
    })
    socket.on('error', () => undefined)
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true
        this.wake()
        resolve()
      }),
    )
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port })
      socket.once('connect', () => resolve(new RawConnection(socket)))
      socket.once('error', reject)
    })
  }

  private wake(): void {
    const waiting = this.waiting
    this.waiting = null
    waiting?.()
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /**
   * Sends bytes and resolves once the socket takes more (after 'drain' when its buffer is full), as a client that
   * writes as fast as the broker reads; rejects if the connection closes meanwhile.
   */
  async sendPaced(bytes: Buffer): Promise<void> {
    if (this.socket.write(bytes)) return
    if (this.ended) throw new Error('the broker closed the connection')
    await Promise.race([
      new Promise((resolve) => this.socket.once('drain', resolve)),
      this.closed.then(() => Promise.reject(new Error('the broker closed the connection'))),
    ])
  }

  /**
   * Stops reading, as a client that does not read its answers: Node keeps at most its high-water mark of them
   * (unreadBytes), the rest stays in the kernel's buffers and then in the broker.
   */
  pause(): void {
    this.socket.pause()
  }

  /** Bytes of answers received while paused. */
  get unreadBytes(): number {
    return this.socket.readableLength
  }

  resume(): void {
    this.socket.resume()
  }

  /** Closes our side for writing (EOF), as a client that stops mid-frame does. */
  end(): void {
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** The next response frame (without its size prefix); rejects if the broker closes the connection instead. */
  async nextFrame(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    while (this.frames.length === 0) {
      if (this.ended) throw new Error('the broker closed the connection')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiting = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.frames.shift()!
  }

  /** True once the broker has closed the connection; false if it is still open after `timeoutMs`. */
  async closedWithin(timeoutMs = 10_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const result = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ])
    clearTimeout(timer)
    return result
  }

  get isClosed(): boolean {
    return this.ended
  }
}

/** ApiVersions v0: an empty body, answered in the v0 layout (errorCode, [apiKey, min, max]). */
export function apiVersionsV0(correlationId: number): Buffer {
  return requestFrame({ apiKey: 18, apiVersion: 0, correlationId })
}

/** Parses an ApiVersions v0 response payload: correlationId, errorCode, [apiKey, minVersion, maxVersion]. */
export function parseApiVersionsV0(payload: Buffer): { correlationId: number; errorCode: number; apiKeys: { apiKey: number; minVersion: number; maxVersion: number }[] } {
  const correlationId = payload.readInt32BE(0)
  const errorCode = payload.readInt16BE(4)
  const count = payload.readInt32BE(6)
  const apiKeys = []
  for (let i = 0, at = 10; i < count; i++, at += 6) {
    apiKeys.push({ apiKey: payload.readInt16BE(at), minVersion: payload.readInt16BE(at + 2), maxVersion: payload.readInt16BE(at + 4) })
  }
  return { correlationId, errorCode, apiKeys }
}

/**
 * `text` in xerial's snappy stream format, as Java producers write a snappy batch's records: the magic
 * `\x82SNAPPY\0`, version 1 and compatible version 1 (int32 each), then each block as an int32 length and raw snappy.
 * `splitAt` cuts `text` into two blocks.
 */
export function xerialSnappy(text: Buffer, splitAt: number): Buffer {
  const blocks = [text.subarray(0, splitAt), text.subarray(splitAt)].map((block) => snappy.compressSync(block) as Buffer)
  return Buffer.concat([
    Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]),
    ...blocks.flatMap((block) => [new Bytes().int32(block.length).build(), block]),
  ])
}

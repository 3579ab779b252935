/**
 * Reading inside record batches without stalling the node: validating a produced batch's records, searching a
 * stored batch for ListOffsets, decoding and rebuilding one for compaction. The work itself is
 * protocol/record-batch.ts's (validateRecords, searchRecords, decodeRecords, rebuildBatch); this module decides where
 * it runs.
 *
 *   uncompressed, or compressed and saying it inflates to <= INLINE_INFLATE_BYTES
 *       -> on the event loop, at once (a walk of a 16 KiB batch takes microseconds)
 *   anything larger, or whose framing does not say, or that turned out larger than it said; and every
 *   recompression (a topic's compression.type), whatever its size
 *       -> a small pool of worker threads (node:worker_threads), one task per worker at a time, FIFO
 *
 * A compressed batch may inflate to 32x its topic's max.message.bytes (compression.ts inflationLimit), 32 MiB by
 * default, which takes a fraction of a second to gunzip and walk: on the event loop, 36 ListOffsets lookups in such
 * batches kept another client's Metadata request waiting 3.2 s; with the pool its p99 stayed at 5 ms
 * (bench/list-offsets-storm.ts). In a worker it costs other clients nothing but a core.
 *
 * The worker receives a copy of the batch (transferred, so copied once) and returns only the verdict, the record
 * found, the decoded records or the rebuilt batch; it never holds more than one inflated batch. A worker that dies
 * fails its task and is replaced on the next one. Workers are unreferenced while idle, so they never keep a stopping
 * node alive. zstd's WebAssembly heap grows to the largest compression its thread has done and never shrinks (a 40 MB
 * batch at compression.zstd.level 22 leaves ~750 MB): a worker whose memory outside V8's heap passes
 * RETIRE_EXTERNAL_BYTES after a task says so with its answer and is terminated, which frees it; the next task starts a
 * fresh one.
 *
 * One pool serves the process (the workers are started on first use), as libuv's thread pool does.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { getHeapStatistics } from 'node:v8'
import { availableParallelism } from 'node:os'
import { Attribute, At, BATCH_HEADER_SIZE, LOG_OVERHEAD, decodeRecords, rebuildBatch, searchRecords, validateRecords } from '../protocol/record-batch.js'
import type { FoundRecord, Record, RecordRules, RecordsCheck } from '../protocol/record-batch.js'
import { Compression, codecLoaded, inflatedSizeHint, loadCodec } from '../protocol/compression.js'
import { ErrorCode, KafkaError } from '../protocol/errors.js'
import { DecodeError } from '../protocol/reader.js'

/**
 * Compressed batches that say they inflate to at most this are read on the event loop. Inflating and walking a
 * 16 KiB batch of 100-byte records there costs 15-60 µs (lz4, snappy, gzip; bench/validation-cost.ts), about what
 * handing it to a worker and taking the answer back costs the event loop; 64 KiB keeps the worst case (gzip) well
 * under a millisecond.
 */
export const INLINE_INFLATE_BYTES = 64 * 1024

const WORKER_ROLE = 'brook-batch-inflater'

/** What a worker is asked to do: `batch` is a whole stored or produced batch, inflated to `maxInflatedBytes` at most. */
type Task = { batch: Buffer; maxInflatedBytes: number } & (
  | { kind: 'validate'; rules: RecordRules }
  | { kind: 'search'; query: SearchQuery }
  | { kind: 'decode' }
  | { kind: 'rebuild'; keep: bigint[] }
  | { kind: 'recompress'; codec: number; level: number }
)

export interface SearchQuery {
  /** Records below this offset are not answered (the log start may fall inside a batch). */
  minOffset: bigint
  /** The first record whose timestamp is >= this; absent: the record with the largest timestamp. */
  timestamp?: bigint
  maxInflatedBytes: number
}

/** The codec `task` writes, whose compressor the thread running it loads first (`loadCodec`); none for the reads. */
function writtenCodec(task: Task): number {
  if (task.kind === 'recompress') return task.codec
  if (task.kind === 'rebuild') return task.batch.readInt16BE(At.attributes) & Attribute.compressionMask
  return Compression.none
}

/** Does `task`, inflating to at most `maxInflatedBytes` (the task's own bound, or the event loop's smaller one). */
function run(task: Task, maxInflatedBytes: number): RecordsCheck | FoundRecord | null | Record[] | Buffer {
  switch (task.kind) {
    case 'validate':
      return validateRecords(task.batch, { ...task.rules, maxInflatedBytes })
    case 'search':
      return searchRecords(task.batch, { ...task.query, maxInflatedBytes })
    case 'decode':
      return decodeRecords(task.batch, maxInflatedBytes)
    case 'rebuild': {
      const keep = new Set(task.keep)
      return rebuildBatch(task.batch, decodeRecords(task.batch, maxInflatedBytes).filter((r) => keep.has(r.offset)))
    }
    case 'recompress':
      return rebuildBatch(task.batch, decodeRecords(task.batch, maxInflatedBytes), { codec: task.codec, level: task.level })
  }
}

interface Job {
  task: Task
  resolve: (result: unknown) => void
  reject: (error: Error) => void
}

/** A worker holding more than this outside V8's heap after a task (zstd's WebAssembly memory, mostly) is retired. */
export const RETIRE_EXTERNAL_BYTES = 128 * 1024 * 1024

interface Slot {
  worker: Worker
  job: Job | null
}

/** A worker's error, rebuilt on this side with its class, so callers can tell a bad batch from a bug. */
interface WireError {
  name: string
  message: string
  code?: number
}

function toWire(error: unknown): WireError {
  const e = error as Error
  return { name: e.name, message: e.message, ...(error instanceof KafkaError ? { code: error.code } : {}) }
}

function fromWire(error: WireError): Error {
  if (error.code !== undefined) return new KafkaError(error.code, error.message)
  if (error.name === 'DecodeError') return new DecodeError(error.message)
  return new Error(error.message)
}

export class BatchInflater {
  private readonly slots: Slot[] = []
  private readonly queue: Job[] = []

  /** `size`: the most worker threads the pool starts. */
  constructor(private readonly size: number) {}

  /**
   * Checks a produced batch's records (validateRecords). Synchronous when the batch is read on the event loop, so
   * that a batch decided at once is appended at once.
   */
  validate(batch: Buffer, rules: RecordRules): RecordsCheck | Promise<RecordsCheck> {
    const task: Task = { kind: 'validate', batch, rules, maxInflatedBytes: rules.maxInflatedBytes }
    const inline = inlineBound(batch, rules.maxInflatedBytes)
    if (inline !== null) {
      const check = run(task, inline) as RecordsCheck
      if (check.ok || !misjudged(check.errorCode, inline, rules.maxInflatedBytes)) return check
    }
    return this.submit(task) as Promise<RecordsCheck>
  }

  /** searchRecords on a stored batch; rejects when its records cannot be read. */
  search(batch: Buffer, query: SearchQuery): Promise<FoundRecord | null> {
    return this.place({ kind: 'search', batch, query, maxInflatedBytes: query.maxInflatedBytes }) as Promise<FoundRecord | null>
  }

  /** decodeRecords on a stored batch; rejects when its records cannot be read. */
  async decode(batch: Buffer, maxInflatedBytes: number): Promise<Record[]> {
    const records = (await this.place({ kind: 'decode', batch, maxInflatedBytes })) as Record[]
    // From a worker, Buffers arrive as plain Uint8Arrays.
    const buffer = (bytes: Uint8Array | null): Buffer | null => (bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    return records.map((r) => ({ ...r, key: buffer(r.key), value: buffer(r.value), headers: r.headers.map((h) => ({ key: h.key, value: buffer(h.value) })) }))
  }

  /** rebuildBatch on a stored batch, keeping the records at `keep` (compaction); rejects when they cannot be read. */
  async rebuild(batch: Buffer, keep: bigint[], maxInflatedBytes: number): Promise<Buffer> {
    const rebuilt = (await this.place({ kind: 'rebuild', batch, keep, maxInflatedBytes })) as Uint8Array
    return Buffer.from(rebuilt.buffer, rebuilt.byteOffset, rebuilt.byteLength)
  }

  /**
   * A produced batch with every record, compressed with `codec` at `level` instead (a topic's compression.type and
   * its KIP-390 level, Kafka's LogValidator); rejects when its records cannot be read.
   */
  async recompress(batch: Buffer, codec: number, level: number, maxInflatedBytes: number): Promise<Buffer> {
    // Always in a worker: compressing costs far more than reading, and gzip's cost depends on the bytes, not only their
    // size (at compression.gzip.level 9, 64 KiB of random a's and b's take 146 ms, of JSON 2.5 ms).
    const rebuilt = (await this.submit({ kind: 'recompress', batch, codec, level, maxInflatedBytes })) as Uint8Array
    return Buffer.from(rebuilt.buffer, rebuilt.byteOffset, rebuilt.byteLength)
  }

  /** Runs `task` on the event loop when inlineBound allows (and the batch is as small as it says), else in a worker. */
  private async place(task: Task): Promise<unknown> {
    const inline = inlineBound(task.batch, task.maxInflatedBytes)
    if (inline !== null) {
      // Awaited only the first time a codec is needed: this path runs for every produced batch.
      if (!codecLoaded(writtenCodec(task))) await loadCodec(writtenCodec(task))
      try {
        return run(task, inline)
      } catch (error) {
        if (!misjudged(error instanceof KafkaError ? error.code : null, inline, task.maxInflatedBytes)) throw error
      }
    }
    return this.submit(task)
  }

  /** Stops the workers; tasks still queued or running are rejected. */
  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) job.reject(new Error('the batch inflater was closed'))
    await Promise.all(this.slots.splice(0).map(({ worker }) => worker.terminate()))
  }

  private submit(task: Task): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject })
      this.dispatch()
    })
  }

  private dispatch(): void {
    for (const slot of this.slots) if (slot.job === null && this.queue.length > 0) this.start(slot, this.queue.shift()!)
    while (this.queue.length > 0 && this.slots.length < this.size) this.start(this.spawn(), this.queue.shift()!)
  }

  private spawn(): Slot {
    const worker = new Worker(new URL(import.meta.url), { workerData: WORKER_ROLE })
    const slot: Slot = { worker, job: null }
    worker.on('message', (reply: { result?: unknown; error?: WireError; retiring?: boolean }) => {
      const job = slot.job
      slot.job = null
      worker.unref()
      if (reply.retiring) {
        // Out of the pool before dispatch can hand it another task; terminating it gives its memory back.
        const index = this.slots.indexOf(slot)
        if (index >= 0) this.slots.splice(index, 1)
        void worker.terminate()
      }
      if (reply.error) job?.reject(fromWire(reply.error))
      else job?.resolve(reply.result)
      this.dispatch()
    })
    const lost = (reason: string): void => {
      const index = this.slots.indexOf(slot)
      if (index < 0) return
      this.slots.splice(index, 1)
      slot.job?.reject(new Error(`a batch inflater worker ${reason}`))
      slot.job = null
      this.dispatch()
    }
    worker.on('error', (error) => lost(`failed: ${error.message}`))
    worker.on('exit', (code) => lost(`exited with code ${code}`))
    this.slots.push(slot)
    return slot
  }

  private start(slot: Slot, job: Job): void {
    slot.job = job
    // A task keeps the process alive (a compaction pass awaited by a stopping node); an idle worker does not.
    slot.worker.ref()
    const { batch, ...rest } = job.task
    const copy = new Uint8Array(batch.length)
    copy.set(batch)
    slot.worker.postMessage({ ...rest, batch: copy }, [copy.buffer])
  }
}

/**
 * True when a batch read on the event loop (error `code`, or null) turned out larger than it said: the full bound
 * applies, in a worker.
 */
function misjudged(code: number | null, inline: number, maxInflatedBytes: number): boolean {
  return code === ErrorCode.MESSAGE_TOO_LARGE && inline < maxInflatedBytes
}

/**
 * The bound to read `batch` on the event loop with, or null when it goes to a worker: uncompressed batches are
 * walked in place; a compressed one is read here when its framing says it inflates to at most
 * INLINE_INFLATE_BYTES, and then only up to that (a batch that lied is stopped there and handed on).
 */
function inlineBound(batch: Buffer, maxInflatedBytes: number): number | null {
  const codec = batch.readInt16BE(At.attributes) & Attribute.compressionMask
  if (codec === Compression.none) return maxInflatedBytes
  const end = Math.min(batch.length, LOG_OVERHEAD + batch.readInt32BE(At.batchLength))
  const hint = inflatedSizeHint(codec, batch.subarray(BATCH_HEADER_SIZE, end))
  return hint !== null && hint <= INLINE_INFLATE_BYTES ? Math.min(INLINE_INFLATE_BYTES, maxInflatedBytes) : null
}

/** The process's pool: up to one worker per core beyond the first, at most four, at least one. */
export const batchInflater = new BatchInflater(Math.max(1, Math.min(4, availableParallelism() - 1)))

/** True when this worker holds more than RETIRE_EXTERNAL_BYTES outside V8's heap (zstd's WebAssembly memory never shrinks). */
function retiring(): boolean {
  return getHeapStatistics().external_memory > RETIRE_EXTERNAL_BYTES
}

// Run as a worker of the pool: answer tasks until terminated.
if (!isMainThread && workerData === WORKER_ROLE) {
  // One task at a time: the pool sends a worker its next task only after this one's answer.
  parentPort!.on('message', async (message: Omit<Task, 'batch'> & { batch: Uint8Array }) => {
    const task = { ...message, batch: Buffer.from(message.batch.buffer, message.batch.byteOffset, message.batch.byteLength) } as Task
    try {
      await loadCodec(writtenCodec(task))
      const result = run(task, task.maxInflatedBytes)
      parentPort!.postMessage({ result, retiring: retiring() })
    } catch (error) {
      parentPort!.postMessage({ error: toWire(error), retiring: retiring() })
    }
  })
}

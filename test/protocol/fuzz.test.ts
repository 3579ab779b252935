/**
 * A bounded protocol fuzz test over the golden frames real clients sent (test/fixtures/frames): each case mutates a
 * frame (flipped bytes, truncation, inflated length fields, corrupted varints, inserted or deleted bytes) with a
 * seeded PRNG, so any failure is reproducible:
 *
 *   BROOK_FUZZ_SEED=<seed printed by the failing run> npx vitest run test/protocol/fuzz.test.ts
 *
 * (a) in process: the request decoder either decodes a mutated frame or throws DecodeError/RangeError, never
 *     returns a collection larger than the frame, and what it decodes encodes and decodes again to the same value;
 *     a Produce frame's batches go through produce's checks (checkProducedBatch, validateRecords) without throwing;
 * (b) over sockets, to one real broker process: after each mutated frame a fresh connection still gets an
 *     ApiVersions answer, and the process never exits;
 * (c) length limits, over sockets, for every API and version the dispatcher advertises (so a new API is covered
 *     as soon as it is registered): requests written field by field from the message definitions by a writer in
 *     this file (not the codec), first whole requests whose every string, byte string and array is at a limit (0, 1,
 *     249, 250, 255, 256, 32,767 bytes; 0, 1, 2 items; every nullable field null; integers at 0, 1, -1 and their
 *     maximum), then one field at a time holding a length that lies or breaks a rule (null where not nullable,
 *     32,768 and 65,535 bytes, 2^31 claimed with three bytes sent), in the classic and the compact encoding as the
 *     version has it. Each connection is answered (with its correlation id) or closed; only requests that may wait
 *     (Produce, Fetch, JoinGroup, SyncGroup) may stay silent. A fresh ApiVersions is answered after every batch, the
 *     process never exits, and it logs no ERROR (no handler failed and no answer failed to encode).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import net from 'node:net'
import { randomInt } from 'node:crypto'
import { DecodeError } from '../../protocol/reader.js'
import { decodeResponseFrame } from '../../protocol/frame.js'
import { checkProducedBatch, validateRecords } from '../../protocol/record-batch.js'
import { inflationLimit } from '../../protocol/compression.js'
import { apiVersions, type ApiVersionsResponse } from '../../protocol/messages/api-versions.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { frameNamed, loadFrames, type LoadedFrame } from '../fixtures/frames.js'
import { decodeRequestFrame, encodeRequestFrame } from './request-frame.js'
import { HANDLERS } from '../../broker/dispatcher.js'
import { inRange, parseRange } from '../../protocol/versions.js'
import { PRIMITIVES, type FieldSpec } from '../../protocol/schema.js'
import { Bytes } from '../helpers/wire.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { seededBelow } from '../helpers/random.js'

const SEED = Number(process.env.BROOK_FUZZ_SEED ?? randomInt(2 ** 31))
const IN_PROCESS_CASES_PER_FRAME = 80
const SOCKET_CASES = 250

const frames = loadFrames()

type Random = ReturnType<typeof seededBelow>

interface Mutation {
  readonly name: string
  /** Returns a mutated copy of the frame. */
  apply(frame: Buffer, random: Random): Buffer
}

/** Somewhere past the size prefix (mutating the prefix itself is what `withSize` cases are for). */
const somewhere = (frame: Buffer, random: Random): number => 4 + random(Math.max(1, frame.length - 4))

/**
 * Where a length or count of `width` bytes probably is: a value between 0 and what follows it. Most such spots in
 * these frames are string lengths, array counts and record-batch sizes; any other spot is a fine target too.
 */
function lengthLike(frame: Buffer, width: 2 | 4, random: Random): number {
  const spots: number[] = []
  for (let at = 4; at + width <= frame.length; at++) {
    const value = width === 2 ? frame.readInt16BE(at) : frame.readInt32BE(at)
    if (value > 0 && value <= frame.length - at - width) spots.push(at)
  }
  return spots.length > 0 ? spots[random(spots.length)]! : Math.min(somewhere(frame, random), frame.length - width)
}

const MUTATIONS: readonly Mutation[] = [
  {
    name: 'flip bytes',
    apply(frame, random) {
      const copy = Buffer.from(frame)
      for (let n = 1 + random(4); n > 0; n--) copy[somewhere(copy, random)]! ^= 1 + random(255)
      return copy
    },
  },
  {
    name: 'truncate',
    apply: (frame, random) => Buffer.from(frame.subarray(0, 4 + random(frame.length - 4))),
  },
  {
    name: 'inflate an int32 length',
    apply(frame, random) {
      const copy = Buffer.from(frame)
      copy.writeInt32BE([0x7fffffff, 0x10000000, 0x00ffffff, -2][random(4)]!, lengthLike(copy, 4, random))
      return copy
    },
  },
  {
    name: 'inflate an int16 length',
    apply(frame, random) {
      const copy = Buffer.from(frame)
      copy.writeInt16BE([0x7fff, 0x4000, -2][random(3)]!, lengthLike(copy, 2, random))
      return copy
    },
  },
  {
    name: 'corrupt a varint',
    apply(frame, random) {
      // Continuation bits on every byte (never-ending varint) or a huge value (ffffffff0f = 2^32-1).
      const run = random(2) === 0 ? Buffer.alloc(1 + random(11), 0x80 | random(128)) : Buffer.from('ffffffff0f', 'hex')
      const copy = Buffer.from(frame)
      run.copy(copy, somewhere(copy, random))
      return copy
    },
  },
  {
    name: 'insert bytes',
    apply(frame, random) {
      const at = somewhere(frame, random)
      const extra = Buffer.from(Array.from({ length: 1 + random(8) }, () => random(256)))
      return Buffer.concat([frame.subarray(0, at), extra, frame.subarray(at)])
    },
  },
  {
    name: 'delete bytes',
    apply(frame, random) {
      const at = somewhere(frame, random)
      return Buffer.concat([frame.subarray(0, at), frame.subarray(Math.min(frame.length, at + 1 + random(8)))])
    },
  },
]

/** The frame with its size prefix telling the truth, so the broker reads exactly the mutated bytes. */
function withSize(frame: Buffer): Buffer {
  const copy = Buffer.from(frame)
  if (copy.length >= 4) copy.writeInt32BE(copy.length - 4, 0)
  return copy
}

/** The longest array, string or byte string anywhere inside `value`. */
function largestCollection(value: unknown): number {
  if (typeof value === 'string') return value.length
  if (Buffer.isBuffer(value)) return value.length
  if (Array.isArray(value)) return Math.max(value.length, ...value.map(largestCollection))
  if (value !== null && typeof value === 'object') return Math.max(0, ...Object.values(value).map(largestCollection))
  return 0
}

interface Case {
  readonly id: string
  readonly frame: Buffer
}

function* cases(random: Random, count: number, source: readonly LoadedFrame[]): Generator<Case> {
  for (let i = 0; i < count; i++) {
    const original = source[random(source.length)]!
    const mutation = MUTATIONS[random(MUTATIONS.length)]!
    const mutated = mutation.apply(original.bytes, random)
    // Most cases fix the size prefix so the whole mutated frame is read; some leave it lying.
    const frame = random(4) === 0 ? mutated : withSize(mutated)
    yield { id: `seed ${SEED}, case ${i}: ${mutation.name} in ${original.name}`, frame }
  }
}

console.log(`protocol fuzz seed ${SEED} (reproduce with BROOK_FUZZ_SEED=${SEED})`)

describe(`protocol fuzz, seed ${SEED}`, () => {
  it('the in-process decoder decodes or throws DecodeError/RangeError, within the frame, stably', () => {
    const random = seededBelow(SEED)
    let decodedCount = 0
    for (const { id, frame } of cases(random, frames.length * IN_PROCESS_CASES_PER_FRAME, frames)) {
      let decoded
      try {
        decoded = decodeRequestFrame(frame)
      } catch (error) {
        if (!(error instanceof DecodeError || error instanceof RangeError)) {
          expect.fail(`${id}: threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`)
        }
        continue
      }
      decodedCount++
      expect(largestCollection(decoded.body), `${id}: a decoded collection is larger than the frame`).toBeLessThanOrEqual(frame.length)
      const again = decodeRequestFrame(encodeRequestFrame(decoded.api, decoded.header, decoded.body))
      expect(again.body, `${id}: decode(encode(decoded)) differs`).toEqual(decoded.body)
      if (decoded.api.name === 'Produce') {
        for (const topic of decoded.body.topicData) {
          for (const partition of topic.partitionData) {
            if (!partition.records || !checkProducedBatch(partition.records, { allowZstd: true, maxMessageBytes: 1048588 }).ok) continue
            validateRecords(partition.records, { now: Date.now(), timestampBounds: null, requireKeys: false, maxInflatedBytes: inflationLimit(1048588) })
          }
        }
      }
    }
    // Flipped bytes in names and values still decode; if nothing did, the mutations would be testing nothing.
    expect(decodedCount).toBeGreaterThan(0)
  })

  describe('against a real broker process', () => {
    let broker: BrokerProcess
    const probe = frameNamed(frames, 'api-versions-v2-kafkajs')

    beforeAll(async () => {
      broker = await startBroker()
    })
    afterAll(async () => {
      await broker?.stop()
      broker?.cleanup()
    })

    it('answers a fresh ApiVersions after every mutated frame, and never exits', async () => {
      const random = seededBelow(SEED ^ 0x5eed)
      const outcomes = { answered: 0, closed: 0, silent: 0 }
      for (const { id, frame } of cases(random, SOCKET_CASES, frames)) {
        outcomes[await sendAndHangUp(broker.port, frame)]++
        const answer = await apiVersionsAnswer(broker.port, probe.bytes)
        expect(answer, `${id}: no ApiVersions answer afterwards\n${broker.output().slice(-2000)}`).not.toBeNull()
        expect(answer!.errorCode, id).toBe(0)
        expect(broker.child.exitCode, `${id}: the broker exited`).toBeNull()
      }
      expect(broker.child.signalCode).toBeNull()
      // Both kinds of reply happened: the mutated frames reached the broker's decoder and its handlers.
      expect(outcomes.answered, JSON.stringify(outcomes)).toBeGreaterThan(0)
      expect(outcomes.closed, JSON.stringify(outcomes)).toBeGreaterThan(0)
    })
  })
})

type Outcome = 'answered' | 'closed' | 'silent'

/** Writes one frame on a new connection and hangs up once the broker answers, closes, or lets a moment pass. */
function sendAndHangUp(port: number, frame: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const done = (outcome: Outcome): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(outcome)
    }
    // A frame whose size prefix promises more bytes (or an acks=0 produce) gets nothing back: the case just ends.
    const timer = setTimeout(() => done('silent'), 25)
    socket.on('connect', () => socket.write(frame))
    socket.on('data', () => done('answered'))
    socket.on('close', () => done('closed')).on('error', () => done('closed'))
  })
}

/** Sends the probe on a new connection; resolves with the decoded answer, or null if none comes within 5 s. */
function apiVersionsAnswer(port: number, probe: Buffer): Promise<ApiVersionsResponse | null> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let received = Buffer.alloc(0)
    const finish = (answer: ApiVersionsResponse | null): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(() => finish(null), 5000)
    socket.on('connect', () => socket.write(probe))
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return
      const version = probe.readInt16BE(6)
      finish(decodeResponseFrame<ApiVersionsResponse>(apiVersions, version, received.subarray(4, 4 + received.readInt32BE(0))).body)
    })
    socket.on('close', () => finish(null)).on('error', () => finish(null))
  })
}

// ---- (c) length limits, for every advertised API and version ---------------------------------------------------

/** A length as written on the wire: a true one, the null marker, or a claim followed by fewer bytes than claimed. */
type Length = { count: number } | 'null' | { claimed: number; sent: number }

type Kind = 'string' | 'bytes' | 'array'

interface Field {
  readonly path: string
  readonly kind: Kind
  readonly compact: boolean
  readonly nullable: boolean
}

interface Policy {
  length(field: Field): Length
  int(type: string): number | bigint
}

/** Thrown by the writer once a lying length has been written: the frame ends there. */
class FrameEnds extends Error {}

const INT_LIMITS = { int8: 127, int16: 0x7fff, uint16: 0xffff, int32: 0x7fffffff, uint32: 0xffffffff } as const
type IntMode = 'zero' | 'one' | 'minus one' | 'max'

function intValue(type: string, mode: IntMode): number | bigint {
  if (type === 'int64') return { zero: 0n, one: 1n, 'minus one': -1n, max: 2n ** 63n - 1n }[mode]
  const unsigned = type === 'uint16' || type === 'uint32'
  return { zero: 0, one: 1, 'minus one': unsigned ? 0 : -1, max: INT_LIMITS[type as keyof typeof INT_LIMITS] ?? 1 }[mode]
}

/** Writes requests from the message definitions, per KIP-482's rules for classic and compact encodings. */
class RequestWriter {
  readonly fields: Field[] = []

  constructor(
    private readonly out: Bytes,
    private readonly version: number,
    private readonly flexible: boolean,
    private readonly policy: Policy,
  ) {}

  struct(fields: readonly FieldSpec[], path: string): void {
    for (const field of fields) {
      if (!inRange(field.versions, this.version)) continue
      if (this.flexible && inRange(field.taggedVersions, this.version)) continue
      this.field(field, `${path}.${field.name}`)
    }
    if (this.flexible) this.out.uvarint(0)
  }

  private field(spec: FieldSpec, path: string): void {
    const compact = this.flexible && (spec.flexibleVersions === undefined || inRange(spec.flexibleVersions, this.version))
    const nullable = inRange(spec.nullableVersions, this.version)
    if (spec.type.startsWith('[]')) {
      const count = this.length({ path, kind: 'array', compact, nullable })
      const element = spec.type.slice(2)
      for (let i = 0; i < count; i++) {
        if (PRIMITIVES.has(element)) this.primitive(element, `${path}[]`, compact, false)
        else this.struct(spec.fields ?? [], `${path}[]`)
      }
    } else if (PRIMITIVES.has(spec.type)) {
      this.primitive(spec.type, path, compact, nullable)
    } else {
      if (nullable) this.out.int8(1)
      this.struct(spec.fields ?? [], path)
    }
  }

  private primitive(type: string, path: string, compact: boolean, nullable: boolean): void {
    if (type === 'string' || type === 'bytes' || type === 'records') {
      const count = this.length({ path, kind: type === 'string' ? 'string' : 'bytes', compact, nullable })
      this.out.raw(Buffer.alloc(count, 0x61))
    } else if (type === 'bool') this.out.int8(this.policy.int('int8') === 0 ? 0 : 1)
    else if (type === 'uuid') this.out.raw(Buffer.alloc(16, 0x5a))
    else if (type === 'float64') this.out.raw(Buffer.alloc(8))
    else {
      const value = this.policy.int(type)
      if (type === 'int64') this.out.int64(value as bigint)
      else if (type === 'int8') this.out.int8(value as number)
      else if (type === 'int16') this.out.int16(value as number)
      else if (type === 'uint16') this.out.raw(Buffer.from([(value as number) >> 8, (value as number) & 0xff]))
      else if (type === 'int32') this.out.int32(value as number)
      else this.out.uint32(value as number)
    }
  }

  /** Writes a length; returns how many items or bytes follow (0 after null). */
  private length(field: Field): number {
    this.fields.push(field)
    const length = this.policy.length(field)
    const classicWidth = field.kind === 'string' ? 2 : 4
    const writeClassic = (value: number): void => {
      if (classicWidth === 2) this.out.raw(Buffer.from([(value >> 8) & 0xff, value & 0xff]))
      else this.out.uint32(value >>> 0)
    }
    if (length === 'null') {
      if (field.compact) this.out.uvarint(0)
      else writeClassic(-1)
      return 0
    }
    const count = 'count' in length ? length.count : length.claimed
    if (field.compact) this.out.uvarint(count + 1)
    else writeClassic(count)
    if ('count' in length) return count
    this.out.raw(Buffer.alloc(length.sent, 0x61))
    throw new FrameEnds()
  }
}

/** A whole request frame for (apiKey, version): request header v1 or v2 (flexible), then the body. */
function limitFrame(entry: (typeof HANDLERS)[number], version: number, correlationId: number, policy: Policy): { frame: Buffer; fields: Field[] } {
  const flexible = inRange(entry.api.request.flexibleVersions, version)
  const body = new Bytes().int16(entry.api.apiKey).int16(version).int32(correlationId)
  const writer = new RequestWriter(body, version, flexible, policy)
  try {
    // The client id is a classic nullable string in every header version (RequestHeader.json: flexibleVersions none).
    const clientId = policy.length({ path: 'header.clientId', kind: 'string', compact: false, nullable: true })
    writer.fields.push({ path: 'header.clientId', kind: 'string', compact: false, nullable: true })
    if (clientId === 'null') body.int16(-1)
    else if ('count' in clientId) body.int16(clientId.count).raw(Buffer.alloc(clientId.count, 0x63))
    else {
      body.raw(Buffer.from([(clientId.claimed >> 8) & 0xff, clientId.claimed & 0xff])).raw(Buffer.alloc(clientId.sent, 0x63))
      throw new FrameEnds()
    }
    if (flexible) body.uvarint(0)
    writer.struct(entry.api.request.fields, entry.api.name)
  } catch (error) {
    if (!(error instanceof FrameEnds)) throw error
  }
  return { frame: new Bytes().int32(body.length).raw(body.build()).build(), fields: writer.fields }
}

interface LimitCase {
  readonly id: string
  readonly frame: Buffer
  readonly correlationId: number
  /** Requests that may wait on time or on others before answering (long polls, rebalances, acks=0). */
  readonly mayWait: boolean
}

const MAY_WAIT = new Set(['Produce', 'Fetch', 'JoinGroup', 'SyncGroup'])

/** Every string, byte string and array at once: at each of these lengths, with integers at one of their limits. */
const WHOLE_REQUESTS: readonly { name: string; bytes: number; items: number; ints: IntMode; nulls?: boolean }[] = [
  { name: 'empty', bytes: 0, items: 0, ints: 'zero' },
  { name: 'one of each', bytes: 1, items: 1, ints: 'one' },
  { name: 'two of each (duplicates)', bytes: 1, items: 2, ints: 'minus one' },
  { name: 'every nullable field null', bytes: 1, items: 1, ints: 'one', nulls: true },
  { name: 'strings of 249 bytes', bytes: 249, items: 1, ints: 'one' },
  { name: 'strings of 250 bytes, integers at their maximum', bytes: 250, items: 1, ints: 'max' },
  { name: 'strings of 255 bytes', bytes: 255, items: 1, ints: 'zero' },
  { name: 'strings of 256 bytes, two of each', bytes: 256, items: 2, ints: 'one' },
  { name: 'strings of 32,767 bytes', bytes: 32_767, items: 1, ints: 'one' },
]

/** Lengths that lie or break a rule, for one field at a time. */
function lies(field: Field): { name: string; length: Length }[] {
  const out: { name: string; length: Length }[] = [{ name: 'null', length: 'null' }]
  if (field.kind === 'string') {
    if (field.compact) {
      out.push({ name: '32,768 bytes', length: { claimed: 32_768, sent: 32_768 } })
      out.push({ name: '65,535 bytes', length: { claimed: 65_535, sent: 65_535 } })
      out.push({ name: '2^31 claimed, 3 sent', length: { claimed: 2 ** 31 - 2, sent: 3 } })
    } else {
      // The raw int16s 0x8000 (negative) and 0xffff (-1: null), and 32,767 claimed with 3 bytes sent.
      out.push({ name: 'length 0x8000', length: { claimed: 0x8000, sent: 3 } })
      out.push({ name: 'length 0xffff', length: { claimed: 0xffff, sent: 3 } })
      out.push({ name: '32,767 claimed, 3 sent', length: { claimed: 32_767, sent: 3 } })
    }
  } else {
    out.push({ name: '2^31-1 claimed, 3 sent', length: { claimed: field.compact ? 2 ** 31 - 2 : 2 ** 31 - 1, sent: 3 } })
  }
  return out
}

function* limitCases(): Generator<LimitCase> {
  let correlationId = 0
  for (const entry of HANDLERS) {
    const { min, max } = parseRange(entry.versions)
    for (let version = min; version <= max; version++) {
      const mayWait = MAY_WAIT.has(entry.api.name)
      for (const whole of WHOLE_REQUESTS) {
        const policy: Policy = {
          length: (field) => (whole.nulls && field.nullable ? 'null' : { count: field.kind === 'array' ? whole.items : whole.bytes }),
          int: (type) => intValue(type, whole.ints),
        }
        const id = ++correlationId
        yield { id: `${entry.api.name} v${version}, ${whole.name}`, frame: limitFrame(entry, version, id, policy).frame, correlationId: id, mayWait }
      }
      // The fields of this version, as a plain request has them, each in turn given each lie.
      const plain: Policy = { length: () => ({ count: 1 }), int: (type) => intValue(type, 'one') }
      const { fields } = limitFrame(entry, version, 0, plain)
      for (const target of fields) {
        for (const lie of lies(target)) {
          const policy: Policy = { length: (field) => (field.path === target.path ? lie.length : { count: 1 }), int: plain.int }
          const id = ++correlationId
          yield { id: `${entry.api.name} v${version}, ${target.path} ${lie.name}`, frame: limitFrame(entry, version, id, policy).frame, correlationId: id, mayWait }
        }
      }
    }
  }
}

type LimitOutcome = 'answered' | 'closed' | 'silent'

/**
 * Sends one frame on a new connection; resolves once a response frame with its correlation id arrives, the broker
 * closes, or (for requests that may wait) a moment passes. A request that must answer gets 30 s, which only a hung
 * broker needs.
 */
function exchange(port: number, testCase: LimitCase): Promise<{ outcome: LimitOutcome; correlationId?: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let received = Buffer.alloc(0)
    const done = (result: { outcome: LimitOutcome; correlationId?: number }): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => done({ outcome: 'silent' }), testCase.mayWait ? 250 : 30_000)
    socket.on('connect', () => socket.write(testCase.frame))
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (received.length >= 8) done({ outcome: 'answered', correlationId: received.readInt32BE(4) })
    })
    socket.on('close', () => done({ outcome: 'closed' })).on('error', () => done({ outcome: 'closed' }))
  })
}

describe('length limits, for every API and version the dispatcher advertises', () => {
  let broker: BrokerProcess
  const probe = frameNamed(frames, 'api-versions-v2-kafkajs')
  const CONCURRENCY = 32
  const BATCH = 400

  beforeAll(async () => {
    broker = await startBroker({ args: ['--group-initial-rebalance-delay-ms', '0'] })
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  it('answers or closes each connection, answers a fresh ApiVersions after every batch, never exits, logs no ERROR', { timeout: 300_000 }, async () => {
    const all = [...limitCases()]
    const outcomes = { answered: 0, closed: 0, silent: 0 }
    for (let start = 0; start < all.length; start += BATCH) {
      const batch = all.slice(start, start + BATCH)
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < batch.length) {
          const testCase = batch[next++]!
          const result = await exchange(broker.port, testCase)
          outcomes[result.outcome]++
          if (result.outcome === 'answered') expect(result.correlationId, testCase.id).toBe(testCase.correlationId)
          if (result.outcome === 'silent') expect(testCase.mayWait, `${testCase.id}: neither answered nor closed`).toBe(true)
        }
      }
      await Promise.all(Array.from({ length: CONCURRENCY }, worker))
      const cases = `cases ${start}-${start + batch.length - 1} (${batch[0]!.id} ... ${batch.at(-1)!.id})`
      expect(broker.child.exitCode, `the broker exited during ${cases}\n${broker.output().slice(-3000)}`).toBeNull()
      const answer = await apiVersionsAnswer(broker.port, probe.bytes)
      expect(answer?.errorCode, `no ApiVersions answer after ${cases}\n${broker.output().slice(-3000)}`).toBe(0)
    }
    expect(loggedErrors(broker).slice(0, 5)).toEqual([])
    // Every kind of reply happened: requests reached the handlers, and lies reached the decoder.
    expect(outcomes.answered, JSON.stringify(outcomes)).toBeGreaterThan(0)
    expect(outcomes.closed, JSON.stringify(outcomes)).toBeGreaterThan(0)
    console.log(`length limits: ${all.length} requests over ${HANDLERS.length} APIs, ${JSON.stringify(outcomes)}`)
  })
})

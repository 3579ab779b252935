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
 *     ApiVersions answer, and the process never exits.
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

const SEED = Number(process.env.BROOK_FUZZ_SEED ?? randomInt(2 ** 31))
const IN_PROCESS_CASES_PER_FRAME = 80
const SOCKET_CASES = 250

const frames = loadFrames()

/** mulberry32: a small, well-mixed 32-bit PRNG; the same seed gives the same cases on any machine. */
function prng(seed: number): (below: number) => number {
  let state = seed >>> 0
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below)
  }
}

type Random = ReturnType<typeof prng>

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
    const random = prng(SEED)
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
      const random = prng(SEED ^ 0x5eed)
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

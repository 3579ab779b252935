/**
 * Bad input over real sockets, from the catalogue in reference/reliability-performance-anchors.md §4.3. Every frame
 * here is built by hand (test/helpers/wire.ts) from the protocol guide and the message JSON, not with Brook's codec.
 *
 * Two kinds of answer, as Kafka gives them:
 * - framing and request-level damage (bad sizes, undecodable headers or bodies, unknown keys, versions we do not
 *   advertise) closes the connection (NetworkReceive.java, SocketServer's processor) and nothing else;
 * - damage inside a well-formed request (a bad record batch, bad acks) is a per-partition error code, and the
 *   connection carries on.
 * After every case the broker must still serve a fresh connection; `afterEach` checks that, and that the process
 * is alive.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, fetchPartition, withClient } from '../helpers/kafka.js'
import {
  Bytes,
  RawConnection,
  apiVersionsV0,
  crc32cOf,
  handBuiltBatch,
  parseApiVersionsV0,
  produceBody,
  produceResponseError,
  requestFrame,
} from '../helpers/wire.js'

const UNSUPPORTED_VERSION = 35
const CORRUPT_MESSAGE = 2
const INVALID_RECORD = 87
const INVALID_REQUIRED_ACKS = 21
const UNSUPPORTED_COMPRESSION_TYPE = 76
const MESSAGE_TOO_LARGE = 10

const TOPIC = 'target'

/** Peak resident memory of a process (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match![1]) * 1024
}

/** Rewrites the CRC of a batch after a test changed bytes it covers, so that only the intended damage remains. */
function withFreshCrc(batch: Buffer): Buffer {
  batch.writeUInt32BE(crc32cOf(batch.subarray(21)), 17)
  return batch
}

describe('bad input on the wire', () => {
  let broker: BrokerProcess
  let raw: RawConnection
  let correlationId = 1000
  beforeAll(async () => {
    broker = await startBroker()
    await createTopic(broker, TOPIC)
  })
  afterEach(async () => {
    raw?.destroy()
    expect(broker.child.exitCode, `the broker exited:\n${broker.output()}`).toBeNull()
    const answer = await withClient(broker, (client) => fetchPartition(client, { topic: TOPIC, partition: 0, offset: 0n }))
    expect(answer.errorCode).toBe(0)
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  const open = async (): Promise<RawConnection> => (raw = await RawConnection.open(broker.port))

  /** Sends ApiVersions v0 on the connection and expects an ordinary answer: the connection is still usable. */
  async function expectUsable(connection: RawConnection): Promise<void> {
    const id = ++correlationId
    connection.send(apiVersionsV0(id))
    const answer = parseApiVersionsV0(await connection.nextFrame())
    expect(answer).toMatchObject({ correlationId: id, errorCode: 0 })
  }

  describe('framing', () => {
    it('a negative frame size closes the connection', async () => {
      const connection = await open()
      connection.send(new Bytes().int32(-1).build())
      expect(await connection.closedWithin()).toBe(true)
    })

    it('a frame size above socket.request.max.bytes closes the connection before anything is allocated', async () => {
      const before = peakRss(broker.child.pid!)
      const connection = await open()
      // 2 GiB - 1 claimed, 4 bytes sent: a broker that waited (or allocated) would keep the connection open.
      connection.send(new Bytes().int32(0x7fffffff).build())
      expect(await connection.closedWithin()).toBe(true)
      const oversize = await open()
      oversize.send(new Bytes().int32(100 * 1024 * 1024 + 1).build())
      expect(await oversize.closedWithin()).toBe(true)
      expect(peakRss(broker.child.pid!) - before).toBeLessThan(64 * 1024 * 1024)
    })

    it('a frame too short for a request header closes the connection', async () => {
      const connection = await open()
      connection.send(new Bytes().int32(3).raw([0, 18, 0]).build())
      expect(await connection.closedWithin()).toBe(true)
    })

    it('EOF in the middle of a frame is dropped; the broker carries on', async () => {
      const connection = await open()
      const whole = apiVersionsV0(1)
      connection.send(whole.subarray(0, whole.length - 3))
      connection.end()
      expect(await connection.closedWithin()).toBe(true)
    })

    it('a truncated frame is simply waited for: the rest completes it and the request is answered', async () => {
      const connection = await open()
      const whole = apiVersionsV0(++correlationId)
      connection.send(whole.subarray(0, 7))
      await new Promise((resolve) => setTimeout(resolve, 50))
      connection.send(whole.subarray(7))
      expect(parseApiVersionsV0(await connection.nextFrame())).toMatchObject({ correlationId, errorCode: 0 })
    })

    it('garbage (an HTTP request) closes the connection', async () => {
      const connection = await open()
      connection.send(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      expect(await connection.closedWithin()).toBe(true)
    })

    it('garbage inside a plausible frame size closes the connection', async () => {
      const connection = await open()
      const junk = Buffer.alloc(64, 0xee)
      connection.send(new Bytes().int32(junk.length).raw(junk).build())
      expect(await connection.closedWithin()).toBe(true)
    })
  })

  describe('API keys and versions', () => {
    it('an unknown API key closes the connection', async () => {
      const connection = await open()
      connection.send(requestFrame({ apiKey: 9999, apiVersion: 0, correlationId: 1 }))
      expect(await connection.closedWithin()).toBe(true)
    })

    it('ApiVersions v99 is answered with a v0 body: UNSUPPORTED_VERSION and the range of ApiVersions alone (KIP-511, ApiVersionsRequest.getErrorResponse), and the connection stays open', async () => {
      const connection = await open()
      connection.send(requestFrame({ apiKey: 18, apiVersion: 99, correlationId: 77, flexible: true }, new Bytes().uvarint(1).uvarint(1).uvarint(0).build()))
      const answer = parseApiVersionsV0(await connection.nextFrame())
      expect(answer.correlationId).toBe(77)
      expect(answer.errorCode).toBe(UNSUPPORTED_VERSION)
      expect(answer.apiKeys).toEqual([{ apiKey: 18, minVersion: 0, maxVersion: 4 }])
      await expectUsable(connection)
    })

    it('another API at a version we do not advertise closes the connection', async () => {
      for (const [apiKey, apiVersion] of [
        [3, 13], // Metadata: we advertise 0-12
        [1, 3], // Fetch: v0-3 (legacy message sets) are not offered
        [0, 12], // Produce
      ] as const) {
        const connection = await open()
        connection.send(requestFrame({ apiKey, apiVersion, correlationId: 1 }, Buffer.alloc(16)))
        expect(await connection.closedWithin(), `key ${apiKey} v${apiVersion}`).toBe(true)
      }
    })
  })

  describe('lengths that lie', () => {
    it('an array count far beyond the frame closes the connection without allocating for it', async () => {
      const before = peakRss(broker.child.pid!)
      const connection = await open()
      // Metadata v1: topics = [] of 2^31-1 names, and no bytes after the count.
      connection.send(requestFrame({ apiKey: 3, apiVersion: 1, correlationId: 1 }, new Bytes().int32(0x7fffffff).build()))
      expect(await connection.closedWithin()).toBe(true)
      // Metadata v9 (flexible): a compact array count of 2^32-2.
      const flexible = await open()
      flexible.send(requestFrame({ apiKey: 3, apiVersion: 9, correlationId: 1, flexible: true }, new Bytes().uvarint(0xffffffff).build()))
      expect(await flexible.closedWithin()).toBe(true)
      expect(peakRss(broker.child.pid!) - before).toBeLessThan(64 * 1024 * 1024)
    })

    it('a string length beyond the frame (the client id) closes the connection', async () => {
      const connection = await open()
      const header = new Bytes().int16(18).int16(0).int32(1).int16(30_000).raw(Buffer.from('short')).build()
      connection.send(new Bytes().int32(header.length).raw(header).build())
      expect(await connection.closedWithin()).toBe(true)
    })

    it('a negative array count other than -1 (null) closes the connection', async () => {
      const connection = await open()
      connection.send(requestFrame({ apiKey: 3, apiVersion: 1, correlationId: 1 }, new Bytes().int32(-5).build()))
      expect(await connection.closedWithin()).toBe(true)
    })

    it('a varint longer than 5 bytes closes the connection', async () => {
      const connection = await open()
      connection.send(requestFrame({ apiKey: 3, apiVersion: 9, correlationId: 1, flexible: true }, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])))
      expect(await connection.closedWithin()).toBe(true)
    })

    it('a records length beyond the frame closes the connection', async () => {
      const connection = await open()
      const body = new Bytes().string(null).int16(-1).int32(1000).int32(1).string(TOPIC).int32(1).int32(0).int32(1_000_000).raw(Buffer.alloc(10)).build()
      connection.send(requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 1 }, body))
      expect(await connection.closedWithin()).toBe(true)
    })
  })

  describe('bad record batches: a per-partition error, and the connection carries on', () => {
    /** The partition's high watermark so far: only the well-formed batches below may move it. */
    let storedSoFar = 0n

    async function produceRaw(records: Buffer, options: { acks?: number; version?: number } = {}): Promise<number> {
      const connection = raw && !raw.isClosed ? raw : await open()
      const id = ++correlationId
      connection.send(requestFrame({ apiKey: 0, apiVersion: options.version ?? 7, correlationId: id }, produceBody(TOPIC, 0, records, options.acks ?? -1)))
      const answer = produceResponseError(await connection.nextFrame())
      expect(answer.correlationId).toBe(id)
      return answer.errorCode
    }

    async function expectStoredUnchanged(): Promise<void> {
      await withClient(broker, async (client) => {
        const answer = await fetchPartition(client, { topic: TOPIC, partition: 0, offset: 0n })
        expect(answer.highWatermark).toBe(storedSoFar)
      })
    }

    it('a well-formed hand-built batch is accepted (the builder itself is right)', async () => {
      expect(await produceRaw(handBuiltBatch(['a', 'b', 'c']))).toBe(0)
      storedSoFar = 3n
      await expectUsable(raw)
    })

    it('a CRC mismatch is CORRUPT_MESSAGE', async () => {
      const batch = handBuiltBatch(['x'])
      batch[batch.length - 1] ^= 0xff
      expect(await produceRaw(batch)).toBe(CORRUPT_MESSAGE)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('a batch length claiming more than was sent is CORRUPT_MESSAGE', async () => {
      const batch = handBuiltBatch(['x'])
      batch.writeInt32BE(batch.readInt32BE(8) + 100, 8)
      expect(await produceRaw(batch)).toBe(CORRUPT_MESSAGE)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('magic 1 in a Produce v3+ request is INVALID_RECORD', async () => {
      expect(await produceRaw(handBuiltBatch(['x'], { magic: 1 }))).toBe(INVALID_RECORD)
      expect(await produceRaw(handBuiltBatch(['x'], { magic: 7 }))).toBe(INVALID_RECORD)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('an unknown compression codec is INVALID_RECORD', async () => {
      const batch = handBuiltBatch(['x'])
      batch.writeInt16BE(5, 21)
      expect(await produceRaw(withFreshCrc(batch))).toBe(INVALID_RECORD)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('a record count that disagrees with lastOffsetDelta is INVALID_RECORD', async () => {
      const batch = handBuiltBatch(['x', 'y'])
      batch.writeInt32BE(5, 57)
      expect(await produceRaw(withFreshCrc(batch))).toBe(INVALID_RECORD)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('a batch whose records do not parse is INVALID_RECORD (every kind: produce-validation.test.ts)', async () => {
      // Two records declared (and lastOffsetDelta 1), the bytes of one.
      const two = handBuiltBatch(['x', 'y'])
      const one = handBuiltBatch(['x'])
      const short = Buffer.concat([two.subarray(0, 61), one.subarray(61)])
      short.writeInt32BE(short.length - 12, 8)
      expect(await produceRaw(withFreshCrc(short))).toBe(INVALID_RECORD)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('two batches for one partition are INVALID_RECORD (exactly one batch per partition)', async () => {
      expect(await produceRaw(Buffer.concat([handBuiltBatch(['x']), handBuiltBatch(['y'])]))).toBe(INVALID_RECORD)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('a control batch from a client is INVALID_RECORD', async () => {
      const batch = handBuiltBatch(['x'])
      batch.writeInt16BE(0x30, 21) // transactional | control
      expect(await produceRaw(withFreshCrc(batch))).toBe(INVALID_RECORD)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('zstd in Produce v3 is UNSUPPORTED_COMPRESSION_TYPE (zstd needs v7, KIP-110)', async () => {
      const batch = handBuiltBatch(['x'])
      batch.writeInt16BE(4, 21)
      expect(await produceRaw(withFreshCrc(batch), { version: 3 })).toBe(UNSUPPORTED_COMPRESSION_TYPE)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('a batch above max.message.bytes is MESSAGE_TOO_LARGE', async () => {
      expect(await produceRaw(handBuiltBatch(['v'.repeat(1_100_000)]))).toBe(MESSAGE_TOO_LARGE)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('acks=5 is INVALID_REQUIRED_ACKS', async () => {
      expect(await produceRaw(handBuiltBatch(['x']), { acks: 5 })).toBe(INVALID_REQUIRED_ACKS)
      await expectUsable(raw)
      await expectStoredUnchanged()
    })

    it('a bad batch with acks=0 closes the connection, since there is no response to carry the error', async () => {
      const connection = await open()
      const batch = handBuiltBatch(['x'])
      batch[batch.length - 1] ^= 0xff
      connection.send(requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 1 }, produceBody(TOPIC, 0, batch, 0)))
      expect(await connection.closedWithin()).toBe(true)
      await expectStoredUnchanged()
    })

    it('requests pipelined behind a bad one are answered in order', async () => {
      const connection = await open()
      const bad = handBuiltBatch(['x'])
      bad[bad.length - 1] ^= 0xff
      connection.send(
        Buffer.concat([
          requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 1 }, produceBody(TOPIC, 0, bad)),
          apiVersionsV0(2),
          requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 3 }, produceBody(TOPIC, 0, handBuiltBatch(['ok']))),
        ]),
      )
      expect(produceResponseError(await connection.nextFrame())).toEqual({ correlationId: 1, errorCode: CORRUPT_MESSAGE })
      expect(parseApiVersionsV0(await connection.nextFrame())).toMatchObject({ correlationId: 2, errorCode: 0 })
      expect(produceResponseError(await connection.nextFrame())).toEqual({ correlationId: 3, errorCode: 0 })
      storedSoFar += 1n
      await expectStoredUnchanged()
    })
  })
})

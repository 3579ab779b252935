/**
 * `node dist/bench/codec.js [options]` (`--help` lists them): what the generic codec (protocol/codec.ts) costs per
 * message, in process, for the messages a replicated produce sends most:
 *
 *   Fetch v17 request    a follower's incremental fetch: one partition, replica state (a tagged field)
 *   Fetch v17 response   the leader's answer to it: two partitions of one 300-byte batch each, with currentLeader
 *                        (a tagged struct) as a cluster node sets it
 *   Produce v9 request   one partition, one 300-byte batch, acks=all
 *
 * Each figure is the best of five timed rounds after a warm-up, in nanoseconds per message (encode: into a fresh
 * Writer and out as one buffer; decode: from a fresh Reader over it), so other load on a shared machine inflates it
 * less. It prints a markdown table, once each message has been checked to encode to the same bytes after a decode
 * (exit status 1 if not).
 */
import { performance } from 'node:perf_hooks'
import { codecFor } from '../protocol/codec.js'
import { Reader } from '../protocol/reader.js'
import { Writer } from '../protocol/writer.js'
import { fetch, type FetchRequest, type FetchResponse } from '../protocol/messages/fetch.js'
import { produce, type ProduceRequest } from '../protocol/messages/produce.js'
import type { MessageSpec } from '../protocol/schema.js'
import { benchCommand, number } from './args.js'

const TOPIC_ID = '6f1c2a7e-1b2c-4d5e-8f90-123456789abc'
const BATCH = Buffer.alloc(300, 1)

const FETCH_REQUEST: FetchRequest = {
  clusterId: null,
  replicaId: -1,
  replicaState: { replicaId: 2, replicaEpoch: 7n },
  maxWaitMs: 500,
  minBytes: 1,
  maxBytes: 10_485_760,
  isolationLevel: 0,
  sessionId: 5,
  sessionEpoch: 9,
  topics: [{ topic: '', topicId: TOPIC_ID, partitions: [{ partition: 0, currentLeaderEpoch: 3, fetchOffset: 100n, lastFetchedEpoch: 3, logStartOffset: 0n, partitionMaxBytes: 1_048_576 }] }],
  forgottenTopicsData: [],
  rackId: '',
} as unknown as FetchRequest

const FETCH_RESPONSE = {
  throttleTimeMs: 0,
  errorCode: 0,
  sessionId: 5,
  responses: [
    {
      topic: '',
      topicId: TOPIC_ID,
      partitions: [0, 1].map((partitionIndex) => ({
        partitionIndex,
        errorCode: 0,
        highWatermark: 100n,
        lastStableOffset: 100n,
        logStartOffset: 0n,
        abortedTransactions: null,
        preferredReadReplica: -1,
        currentLeader: { leaderId: 1, leaderEpoch: 3 },
        records: [BATCH],
      })),
    },
  ],
} as unknown as FetchResponse

const PRODUCE_REQUEST = {
  transactionalId: null,
  acks: -1,
  timeoutMs: 30_000,
  topicData: [{ name: 'readings', partitionData: [{ index: 0, records: BATCH }] }],
} as unknown as ProduceRequest

const CASES: readonly { name: string; spec: MessageSpec; version: number; value: unknown }[] = [
  { name: 'Fetch v17 request', spec: fetch.request, version: 17, value: FETCH_REQUEST },
  { name: 'Fetch v17 response', spec: fetch.response, version: 17, value: FETCH_RESPONSE },
  { name: 'Produce v9 request', spec: produce.request, version: 9, value: PRODUCE_REQUEST },
]

/** Best of five rounds of `rounds` calls, in nanoseconds per call, after a warm-up. */
function timeEach(rounds: number, call: () => unknown): number {
  for (let i = 0; i < Math.min(rounds, 5000); i++) call()
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    const start = performance.now()
    for (let i = 0; i < rounds; i++) call()
    best = Math.min(best, ((performance.now() - start) * 1e6) / rounds)
  }
  return best
}

const COMMAND = benchCommand('codec', 'node dist/bench/codec.js [options]', 'What the generic codec costs per message, in process, for the messages of a replicated produce.')
  .option('--rounds <n>', 'messages encoded (and decoded) per timed round', number(1), 100_000)

const { rounds } = COMMAND.parse().opts()
const lines = ['| message | bytes | encode ns | decode ns |', '|---|---:|---:|---:|']
for (const { name, spec, version, value } of CASES) {
  const codec = codecFor(spec, version)
  const encoded = (): Buffer => {
    const writer = new Writer()
    codec.encode(writer, value)
    return writer.toBuffer()
  }
  const bytes = encoded()
  // What is timed must be right: the decoded message encodes to the same bytes.
  const again = new Writer()
  codec.encode(again, codec.decode(new Reader(bytes)))
  if (!again.toBuffer().equals(bytes)) {
    process.stderr.write(`codec: ${name} does not encode to the same bytes once decoded\n`)
    process.exit(1)
  }
  const encodeNs = timeEach(rounds, encoded)
  const decodeNs = timeEach(rounds, () => codec.decode(new Reader(bytes)))
  lines.push(`| ${name} | ${bytes.length} | ${Math.round(encodeNs)} | ${Math.round(decodeNs)} |`)
}
process.stdout.write(`${lines.join('\n')}\n`)

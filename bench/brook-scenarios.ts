/**
 * Scenarios against a real Brook broker process, in order:
 *
 *   start broker -> create topics -> warm-up produce (own topic) -> produce (timed)
 *   -> fetch from 0 (timed; batch cache and page cache warm)
 *   -> stop, start again on the same data directory (timed: recovery)
 *   -> fetch from 0 (timed; LevelDB path) -> stop
 *
 * With `cpuProfDir`, each broker process runs under --cpu-prof, and `phases` gives when each scenario ran, in ms
 * since that process was spawned, so a profile can be cut to one scenario (see profile-summary.ts).
 */
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import { KafkaClient, checkError } from '../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { produce } from '../protocol/messages/produce.js'
import { fetch } from '../protocol/messages/fetch.js'
import { batchCount, type BatchPool } from './batches.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { fetchLoad, type FetchResult } from './fetch-load.js'
import { produceLoad, type ProduceResult } from './produce-load.js'
import { startCpuMeter, waitUntilIdle, type CpuUse } from './measure.js'
import type { BenchOptions } from './options.js'

const TOPIC = 'bench'
const WARMUP_TOPIC = 'bench-warmup'

export interface BrookResult {
  versions: { produce: number; fetch: number }
  produce: ProduceResult & { cpu?: CpuUse }
  fetchWarm: FetchResult & { cpu?: CpuUse }
  fetchAfterRestart: FetchResult & { cpu?: CpuUse }
  /** Spawn to listening of the restarted broker (open + recovery of the data directory). */
  restartMs: number
  /** From listening until the restarted broker was idle (LevelDB's compaction after the reopen done). */
  settledMs: number
  phases?: Record<string, { process: number; fromMs: number; toMs: number }>
}

async function createBenchTopics(broker: BrokerProcess, partitions: number): Promise<{ topicId: string; versions: BrookResult['versions'] }> {
  const admin = await KafkaClient.connect(broker.host, broker.port, { clientId: 'brook-bench' })
  try {
    const request: CreateTopicsRequest = {
      topics: [TOPIC, WARMUP_TOPIC].map((name) => ({ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] })),
      timeoutMs: 30_000,
      validateOnly: false,
    }
    const version = admin.version(createTopics)
    if (version < 7) throw new Error(`CreateTopics v${version} has no topic ids; the bench needs v7`)
    const response = await admin.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, version, request)
    for (const topic of response.topics) checkError(topic.errorCode, `creating topic ${topic.name}`, topic.errorMessage)
    return {
      topicId: response.topics.find((t) => t.name === TOPIC)!.topicId!,
      versions: { produce: admin.version(produce), fetch: admin.version(fetch) },
    }
  } finally {
    admin.close()
  }
}

/** Runs `scenario` with the CPU meter on the broker, noting its phase for profiles. */
async function timed<T extends object>(
  name: string,
  broker: BrokerProcess,
  spawnedAt: number,
  phases: NonNullable<BrookResult['phases']>,
  scenario: () => Promise<T>,
): Promise<T & { cpu?: CpuUse }> {
  const meter = startCpuMeter({ broker: broker.pid })
  const fromMs = performance.now() - spawnedAt
  const result = await scenario()
  phases[name] = { process: broker.pid, fromMs, toMs: performance.now() - spawnedAt }
  const cpu = meter?.()
  return cpu ? { ...result, cpu } : result
}

export async function brookScenarios(options: BenchOptions, pool: BatchPool, dataDir: string): Promise<BrookResult> {
  const nodeArgs: string[] = []
  if (options.brokerCpuProfDir) {
    mkdirSync(options.brokerCpuProfDir, { recursive: true })
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.brokerCpuProfDir)
  }
  const phases: NonNullable<BrookResult['phases']> = {}
  const args = [
    ...(options.validation === 'header-only' ? ['--no-record-validation'] : []),
    ...(options.brokerCacheMaxBytes !== null ? ['--cache-max-bytes', String(options.brokerCacheMaxBytes)] : []),
  ]
  let spawnedAt = performance.now()
  let broker = await startBroker({ dataDir: join(dataDir, 'brook'), nodeArgs, args })
  try {
    const { topicId, versions } = await createBenchTopics(broker, options.partitions)
    const load = {
      host: broker.host,
      port: broker.port,
      partitions: options.partitions,
      version: versions.produce,
      pool,
      batchesPerRequest: options.batchesPerRequest,
      window: options.window,
      connections: options.connections,
    }
    if (options.warmupBytes > 0) {
      const warmup = await produceLoad({ ...load, topic: WARMUP_TOPIC, totalBatches: batchCount(options.warmupBytes, pool) })
      if (warmup.errors > 0) throw new Error(`warm-up produce failed: ${warmup.firstError}`)
    }
    const totalBatches = batchCount(options.totalBytes, pool)
    const produced = await timed('produce', broker, spawnedAt, phases, () => produceLoad({ ...load, topic: TOPIC, totalBatches }))
    const fetchOptions = (port: number) => ({
      host: broker.host,
      port,
      topic: TOPIC,
      topicId,
      version: versions.fetch,
      endOffsets: produced.recordsByPartition,
      maxBytes: options.fetchMaxBytes,
      partitionMaxBytes: options.partitionMaxBytes,
      connections: options.fetchConnections,
    })
    const fetchWarm = await timed('fetchWarm', broker, spawnedAt, phases, () => fetchLoad(fetchOptions(broker.port)))
    await broker.stop()
    spawnedAt = performance.now()
    broker = await startBroker({ dataDir: join(dataDir, 'brook'), nodeArgs, args })
    const restartMs = broker.startMs
    // As the raw read after reopening does: LevelDB's compaction of what the produce left is the writes' cost.
    const settledMs = await waitUntilIdle(broker.pid)
    const fetchAfterRestart = await timed('fetchAfterRestart', broker, spawnedAt, phases, () =>
      fetchLoad(fetchOptions(broker.port)),
    )
    return {
      versions,
      produce: produced,
      fetchWarm,
      fetchAfterRestart,
      restartMs,
      settledMs,
      ...(options.brokerCpuProfDir ? { phases } : {}),
    }
  } finally {
    await broker.stop()
  }
}

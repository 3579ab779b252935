/**
 * The QuorumController's CreatePartitions and topic config changes on three simulated Raft members
 * (controller-sim.ts): PartitionRecords placed like a new topic's or as a manual assignment says, with Kafka's
 * refusals; ConfigRecords for exactly what a change sets, changes or removes, computed from the working image so
 * changes apply one after the other; and both kept by the controller elected after a crash. Every step also runs the
 * Raft checker and the controller's invariants.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode, KafkaError } from '../../../protocol/errors.js'
import { topicConfigs } from '../../../broker/cluster/metadata/image.js'
import { activeImage, committed, SESSION_TIMEOUT_MS, startedSim } from './controller-sim.js'

const started = () => startedSim({ seed: 7, brokerIds: [1, 2, 3] })

/** A change that sets `set` over the current overrides, as IncrementalAlterConfigs' SET does. */
function setting(set: Record<string, string>, remove: string[] = []) {
  return (current: Readonly<Record<string, string>>) => {
    const next: Record<string, string> = { ...current, ...set }
    for (const name of remove) delete next[name]
    return next
  }
}

describe('quorum controller: partitions and configs', () => {
  it('adds partitions with the topic\'s replication factor, leaders spread, or as a manual assignment says, and refuses what Kafka refuses', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 2, replicationFactor: 2 }, sim.cluster.now))
    const grown = await committed<{ assignments: number[][] }>(sim, (c) => c.createPartitions({ name: 'readings', count: 5, assignments: null, validateOnly: false }, sim.cluster.now))
    expect(grown.ok).toBe(true)
    const topic = activeImage(sim).topic('readings')!
    expect(topic.partitions.size).toBe(5)
    const added = [2, 3, 4].map((id) => topic.partitions.get(id)!)
    expect(new Set(added.map((p) => p.leader)).size).toBe(3)
    for (const partition of added) {
      expect(partition.replicas).toHaveLength(2)
      expect(partition.isr).toEqual(partition.replicas)
      expect(partition).toMatchObject({ leader: partition.replicas[0], leaderEpoch: 0, partitionEpoch: 0 })
    }
    expect(sim.imagesAgree()).toBe(true)

    const validated = await sim.onActive((c) => c.createPartitions({ name: 'readings', count: 9, assignments: null, validateOnly: true }, sim.cluster.now))
    expect(validated).toMatchObject({ ok: true, lastOffset: -1n })
    expect(activeImage(sim).topic('readings')!.partitions.size).toBe(5)

    const refusals = [
      [{ name: 'missing', count: 2, assignments: null }, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      [{ name: 'readings', count: 5, assignments: null }, ErrorCode.INVALID_PARTITIONS],
      [{ name: 'readings', count: 3, assignments: null }, ErrorCode.INVALID_PARTITIONS],
      [{ name: 'readings', count: 7, assignments: [[1, 2]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [{ name: 'readings', count: 6, assignments: [[1, 2, 3]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [{ name: 'readings', count: 6, assignments: [[2, 2]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [{ name: 'readings', count: 6, assignments: [[1, 7]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    ] as const
    for (const [request, errorCode] of refusals) {
      expect(await sim.onActive((c) => c.createPartitions({ ...request, validateOnly: false }, sim.cluster.now))).toMatchObject({ ok: false, errorCode })
    }

    // Broker 3 fenced: a manual assignment naming it gets the live replicas as its ISR and leader; one naming only it
    // is refused, and the topic's replication factor of 2 still fits two live brokers but 3 would not.
    sim.killBroker(3)
    await sim.runUntil(() => activeImage(sim).brokers.get(3)?.fenced === true, 3 * SESSION_TIMEOUT_MS, 'broker 3 is fenced')
    const manual = await committed(sim, (c) => c.createPartitions({ name: 'readings', count: 6, assignments: [[3, 1]], validateOnly: false }, sim.cluster.now))
    expect(manual.ok).toBe(true)
    expect(activeImage(sim).topic('readings')!.partitions.get(5)).toMatchObject({ replicas: [3, 1], isr: [1], leader: 1 })
    await committed(sim, (c) => c.createTopic({ name: 'wide', numPartitions: 1, replicationFactor: 2 }, sim.cluster.now))
    // CreateTopics with a manual assignment follows the same rules.
    const placed = await committed(sim, (c) => c.createTopic({ name: 'placed', numPartitions: -1, replicationFactor: -1, assignments: [[3, 2], [1, 3]] }, sim.cluster.now))
    expect(placed.ok).toBe(true)
    expect([...activeImage(sim).topic('placed')!.partitions.values()]).toMatchObject([
      { replicas: [3, 2], isr: [2], leader: 2 },
      { replicas: [1, 3], isr: [1], leader: 1 },
    ])
    const createRefusals = [
      [{ numPartitions: 2, replicationFactor: -1, assignments: [[1, 2]] }, ErrorCode.INVALID_REQUEST],
      [{ numPartitions: -1, replicationFactor: -1, assignments: [[1, 2], [2]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [{ numPartitions: -1, replicationFactor: -1, assignments: [[3]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      [{ numPartitions: -1, replicationFactor: -1, assignments: [[1, 8]] }, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    ] as const
    for (const [request, errorCode] of createRefusals) {
      expect(await sim.onActive((c) => c.createTopic({ name: 'misplaced', ...request }, sim.cluster.now))).toMatchObject({ ok: false, errorCode })
    }
    expect(await sim.onActive((c) => c.createPartitions({ name: 'readings', count: 7, assignments: [[3, 3]], validateOnly: false }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    })
    sim.killBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === true, 3 * SESSION_TIMEOUT_MS, 'broker 2 is fenced')
    expect(await sim.onActive((c) => c.createPartitions({ name: 'wide', count: 2, assignments: null, validateOnly: false }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.INVALID_REPLICATION_FACTOR,
    })
    expect(await sim.onActive((c) => c.createPartitions({ name: 'wide', count: 2, assignments: [[2, 3]], validateOnly: false }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
    })
  })

  it('writes ConfigRecords for what a change sets, changes or removes, from the working image, and nothing for no change', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'tuned', numPartitions: 1, replicationFactor: 3, configs: { 'retention.ms': '1000' } }, sim.cluster.now))
    const before = activeImage(sim).provenance.offset
    const changed = await committed(sim, (c) =>
      c.alterTopicConfigs({ name: 'tuned', alter: setting({ 'min.insync.replicas': '2', 'retention.ms': '2000' }), validateOnly: false }, sim.cluster.now),
    )
    expect(changed).toMatchObject({ ok: true, overrides: { 'retention.ms': '2000', 'min.insync.replicas': '2' } })
    for (const { image } of sim.images()) expect(topicConfigs(image, 'tuned')).toEqual({ 'retention.ms': '2000', 'min.insync.replicas': '2' })
    expect(activeImage(sim).provenance.offset).toBeGreaterThan(before)

    // Two changes proposed in one step, before either commits: the second sees the first (the working image), so
    // neither is lost.
    const both = await committed(sim, (c) => {
      const first = c.alterTopicConfigs({ name: 'tuned', alter: setting({ 'segment.ms': '60000' }), validateOnly: false }, sim.cluster.now)
      expect(first.ok).toBe(true)
      return c.alterTopicConfigs({ name: 'tuned', alter: setting({}, ['retention.ms']), validateOnly: false }, sim.cluster.now)
    })
    expect(both).toMatchObject({ ok: true, overrides: { 'min.insync.replicas': '2', 'segment.ms': '60000' } })
    expect(topicConfigs(activeImage(sim), 'tuned')).toEqual({ 'min.insync.replicas': '2', 'segment.ms': '60000' })

    const unchanged = await sim.onActive((c) => c.alterTopicConfigs({ name: 'tuned', alter: setting({ 'segment.ms': '60000' }), validateOnly: false }, sim.cluster.now))
    expect(unchanged).toMatchObject({ ok: true, lastOffset: -1n })
    const validated = await sim.onActive((c) => c.alterTopicConfigs({ name: 'tuned', alter: setting({ 'segment.ms': '1' }), validateOnly: true }, sim.cluster.now))
    expect(validated).toMatchObject({ ok: true, lastOffset: -1n })
    const refused = await sim.onActive((c) =>
      c.alterTopicConfigs(
        {
          name: 'tuned',
          alter: () => {
            throw new KafkaError(ErrorCode.INVALID_CONFIG, "unknown topic config 'retention.minutes'")
          },
          validateOnly: false,
        },
        sim.cluster.now,
      ),
    )
    expect(refused).toMatchObject({ ok: false, errorCode: ErrorCode.INVALID_CONFIG, message: "unknown topic config 'retention.minutes'" })
    expect(await sim.onActive((c) => c.alterTopicConfigs({ name: 'missing', alter: setting({}), validateOnly: false }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    })
    expect(topicConfigs(activeImage(sim), 'tuned')).toEqual({ 'min.insync.replicas': '2', 'segment.ms': '60000' })
  })

  it('keeps added partitions and configs through a failover, and the new controller changes them further', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'kept', numPartitions: 1, replicationFactor: 3 }, sim.cluster.now))
    await committed(sim, (c) => c.createPartitions({ name: 'kept', count: 3, assignments: null, validateOnly: false }, sim.cluster.now))
    await committed(sim, (c) => c.alterTopicConfigs({ name: 'kept', alter: setting({ 'retention.ms': '5000' }), validateOnly: false }, sim.cluster.now))
    const old = sim.activeIds()[0]!
    sim.cluster.crash(old)
    await sim.runUntil(() => sim.activeIds().length === 1, 5000, 'another controller is active')
    expect(activeImage(sim).topic('kept')!.partitions.size).toBe(3)
    expect(topicConfigs(activeImage(sim), 'kept')).toEqual({ 'retention.ms': '5000' })
    await committed(sim, (c) => c.alterTopicConfigs({ name: 'kept', alter: setting({ 'retention.ms': '6000' }), validateOnly: false }, sim.cluster.now))
    await committed(sim, (c) => c.createPartitions({ name: 'kept', count: 4, assignments: null, validateOnly: false }, sim.cluster.now))
    await sim.cluster.restart(old)
    await sim.runUntil(() => sim.images().length === 3 && sim.imagesAgree(), 5000, 'the old controller catches up')
    expect(topicConfigs(sim.controller(old)!.image, 'kept')).toEqual({ 'retention.ms': '6000' })
    expect(sim.controller(old)!.image.topic('kept')!.partitions.size).toBe(4)
  })
})

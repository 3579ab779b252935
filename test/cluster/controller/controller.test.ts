/**
 * The QuorumController on three simulated Raft members (controller-sim.ts), step by step: registration and
 * fencing, unregistration, placement, elections from the ISR, unclean election, producer-id blocks, NOT_CONTROLLER,
 * and failover. Every step also runs the Raft checker and the controller's invariants.
 */
import { describe, expect, it } from 'vitest'
import { ErrorCode } from '../../../protocol/errors.js'
import { ElectionType } from '../../../protocol/constants.js'
import { NO_LEADER, type BrokerEndpoint } from '../../../broker/cluster/metadata/image.js'
import type { ControllerResult, ElectionResult } from '../../../broker/cluster/controller/controller.js'
import { encodeMetadataSnapshot, restoreMetadataSnapshot } from '../../../broker/cluster/metadata/snapshot.js'
import { activeImage, committed, ControllerSim, HEARTBEAT_INTERVAL_MS, LEADER_IMBALANCE_CHECK_INTERVAL_MS, SESSION_TIMEOUT_MS, startedSim } from './controller-sim.js'

const started = (brokerIds = [1, 2, 3], controller: { autoLeaderRebalanceEnable?: boolean; leaderImbalanceCheckIntervalMs?: number } = {}) =>
  startedSim({ seed: 42, brokerIds, controller })

describe('quorum controller', () => {
  it('registers brokers fenced, unfences them once caught up, and answers NOT_CONTROLLER elsewhere', async () => {
    const sim = await started()
    const image = activeImage(sim)
    expect(image.features.get('metadata.version')).toBe(1)
    expect([...image.brokers.values()].map((broker) => [broker.brokerId, broker.fenced])).toEqual([
      [1, false],
      [2, false],
      [3, false],
    ])
    const follower = [1, 2, 3].find((id) => !sim.activeIds().includes(id))!
    const result = sim.controller(follower)!.createTopic({ name: 'readings', numPartitions: 1, replicationFactor: 1 }, sim.cluster.now)
    expect(result).toMatchObject({ ok: false, errorCode: ErrorCode.NOT_CONTROLLER })
    expect(sim.imagesAgree()).toBe(true)
  })

  it('refuses a second live incarnation of a broker id, and a new registration moves leadership off the old one', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 2 }, sim.cluster.now))
    const broker = sim.brokers.get(1)!
    const oldEpoch = broker.brokerEpoch!
    const register = (incarnation: string) =>
      sim.request((c) =>
        c.registerBroker(
          { brokerId: 1, incarnationId: `00000000-0000-4000-8000-${incarnation}`, endPoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9999, securityProtocol: 0 }], rack: null },
          sim.cluster.now,
        ),
      )
    expect(await register('00000000beef')).toMatchObject({ ok: false, errorCode: ErrorCode.DUPLICATE_BROKER_REGISTRATION })
    // The broker restarts (a new incarnation) after its session ran out: it registers again, fenced, at a new epoch.
    sim.killBroker(1)
    await sim.runUntil(() => activeImage(sim).brokers.get(1)?.fenced === true, 3 * SESSION_TIMEOUT_MS, 'broker 1 is fenced')
    const again = await register('00000000beef')
    if (!again.ok) throw new Error(again.message)
    const registration = activeImage(sim).brokers.get(1)!
    expect(registration).toMatchObject({ brokerEpoch: again.lastOffset, fenced: true })
    expect(registration.brokerEpoch).toBeGreaterThan(oldEpoch)
    for (const partition of activeImage(sim).topic('readings')!.partitions.values()) expect(partition.leader).not.toBe(1)
    // Heartbeats of the old incarnation are refused.
    expect(
      await sim.onActive((c) => c.heartbeat({ brokerId: 1, brokerEpoch: oldEpoch, currentMetadataOffset: 1000n, wantFence: false, wantShutDown: false }, sim.cluster.now)),
    ).toMatchObject({ ok: false, errorCode: ErrorCode.STALE_BROKER_EPOCH })
    expect(
      await sim.onActive((c) => c.heartbeat({ brokerId: 8, brokerEpoch: 0n, currentMetadataOffset: 0n, wantFence: false, wantShutDown: false }, sim.cluster.now)),
    ).toMatchObject({ ok: false, errorCode: ErrorCode.BROKER_ID_NOT_REGISTERED })
    // A heartbeat from a broker that has not applied its own registration keeps it fenced.
    expect(
      await sim.onActive((c) => c.heartbeat({ brokerId: 1, brokerEpoch: registration.brokerEpoch, currentMetadataOffset: registration.brokerEpoch - 1n, wantFence: false, wantShutDown: false }, sim.cluster.now)),
    ).toMatchObject({ ok: true, isCaughtUp: false, isFenced: true, lastOffset: -1n })
  })

  it('lets a restarted broker register at once when the newly active controller never heard from its old incarnation', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const register = (brokerId: number, incarnation: string) =>
      sim.request((c) =>
        c.registerBroker(
          { brokerId, incarnationId: `00000000-0000-4000-8000-${incarnation}`, endPoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9999, securityProtocol: 0 }], rack: null },
          sim.cluster.now,
        ),
      )
    // Broker 1 goes down with the active controller (as in a restart of the whole cluster): its registration stays
    // unfenced, since no controller was active to fence it.
    const old = sim.activeIds()[0]!
    const oldEpoch = sim.brokers.get(1)!.brokerEpoch!
    sim.killBroker(1)
    sim.cluster.crash(old)
    await sim.runUntil(() => sim.activeIds().length === 1, 5000, 'another controller is active')
    // Within the session the new controller granted every registration, and long enough for the live brokers to be heard.
    await sim.run(HEARTBEAT_INTERVAL_MS * 2)
    expect(activeImage(sim).brokers.get(1)).toMatchObject({ brokerEpoch: oldEpoch, fenced: false })
    const again = await register(1, '00000000beef')
    if (!again.ok) throw new Error(`${again.errorCode}: ${again.message}`)
    expect(activeImage(sim).brokers.get(1)).toMatchObject({ brokerEpoch: again.brokerEpoch, fenced: true })
    for (const partition of activeImage(sim).topic('readings')!.partitions.values()) expect(partition.leader).not.toBe(1)
    // Broker 2 heartbeat to the new controller: a second incarnation of it is still refused.
    expect(await register(2, '00000000cafe')).toMatchObject({ ok: false, errorCode: ErrorCode.DUPLICATE_BROKER_REGISTRATION })
  })

  it('refuses a registration no node of the cluster sends (an id not a voter, no client listener, an implausible host) and writes nothing', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const plaintext = { name: 'PLAINTEXT', host: '127.0.0.1', port: 9999, securityProtocol: 0 }
    const request = (brokerId: number, endPoints: BrokerEndpoint[]) => ({ brokerId, incarnationId: '00000000-0000-4000-8000-00000000beef', endPoints, rack: null })
    // Broker 2 stops and is fenced: only the checks below keep its id from registering again.
    sim.killBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === true, 3 * SESSION_TIMEOUT_MS, 'broker 2 is fenced')
    const active = sim.activeIds()[0]!
    const refusals: [number, BrokerEndpoint[]][] = [
      [-1, [plaintext]],
      [98, [plaintext]],
      [4, [plaintext]],
      [2, []],
      [2, [{ ...plaintext, name: 'EXTERNAL' }]],
      [2, [{ ...plaintext, host: 'h'.repeat(30_000) }]],
      [2, [{ ...plaintext, host: 'h'.repeat(256) }]],
      [2, [{ ...plaintext, host: '' }]],
      [2, [plaintext, { ...plaintext, name: 'REPLICATION', host: 'bad host\n' }]],
      [2, [{ ...plaintext, port: 0 }]],
    ]
    for (const [brokerId, endPoints] of refusals) {
      const outcome = await sim.cluster.act(active, (raft) => {
        const before = { logEndOffset: raft.logEndOffset, image: sim.controller(active)!.image }
        const result = sim.controller(active)!.registerBroker(request(brokerId, endPoints), sim.cluster.now)
        return { result, wrote: raft.logEndOffset !== before.logEndOffset, imageChanged: sim.controller(active)!.image !== before.image }
      })
      expect(outcome, `broker ${brokerId} with ${JSON.stringify(endPoints).slice(0, 200)}`).toMatchObject({
        result: { ok: false, errorCode: ErrorCode.INVALID_REQUEST },
        wrote: false,
        imageChanged: false,
      })
    }
    expect([...activeImage(sim).brokers.keys()].sort()).toEqual([1, 2, 3])
    // A voter's registration (a new incarnation, once the old one's session ran out) is taken, with a host of the
    // longest allowed length and an IPv6 listener beside the client one.
    const taken = await sim.request((c) => c.registerBroker(request(2, [{ ...plaintext, host: 'h'.repeat(255) }, { ...plaintext, name: 'REPLICATION', host: '::1' }]), sim.cluster.now))
    if (!taken.ok) throw new Error(taken.message)
    expect(activeImage(sim).brokers.get(2)).toMatchObject({ brokerEpoch: taken.lastOffset, fenced: true })
  })

  it('places replicas so that leaders spread, and refuses what it cannot place', async () => {
    const sim = await started()
    const created = await committed<{ assignments: number[][] }>(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 6, replicationFactor: 3 }, sim.cluster.now))
    expect(created.ok).toBe(true)
    const topic = activeImage(sim).topic('readings')!
    const leaders = [...topic.partitions.values()].map((partition) => partition.leader)
    expect([1, 2, 3].map((id) => leaders.filter((leader) => leader === id).length)).toEqual([2, 2, 2])
    for (const partition of topic.partitions.values()) {
      expect(new Set(partition.replicas).size).toBe(3)
      expect(partition.isr).toEqual(partition.replicas)
      expect(partition).toMatchObject({ leaderEpoch: 0, partitionEpoch: 0 })
    }
    const refusals = [
      [{ name: 'wide', numPartitions: 1, replicationFactor: 4 }, ErrorCode.INVALID_REPLICATION_FACTOR],
      [{ name: 'none', numPartitions: 1, replicationFactor: 0 }, ErrorCode.INVALID_REPLICATION_FACTOR],
      [{ name: 'empty', numPartitions: 0, replicationFactor: 1 }, ErrorCode.INVALID_PARTITIONS],
      [{ name: 'readings', numPartitions: 1, replicationFactor: 1 }, ErrorCode.TOPIC_ALREADY_EXISTS],
      [{ name: 'bad/name', numPartitions: 1, replicationFactor: 1 }, ErrorCode.INVALID_TOPIC_EXCEPTION],
    ] as const
    for (const [request, errorCode] of refusals) {
      expect(await sim.onActive((c) => c.createTopic(request, sim.cluster.now))).toMatchObject({ ok: false, errorCode })
    }
    // Names that differ only in '.' versus '_' would share metrics: Kafka's controller refuses the second.
    expect((await committed(sim, (c) => c.createTopic({ name: 'plant.temp', numPartitions: 1, replicationFactor: 1 }, sim.cluster.now))).ok).toBe(true)
    expect(await sim.onActive((c) => c.createTopic({ name: 'plant_temp', numPartitions: 1, replicationFactor: 1 }, sim.cluster.now))).toMatchObject({
      ok: false,
      errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION,
      message: "topic 'plant_temp' collides with existing topics: plant.temp",
    })
    const deleted = await committed(sim, (c) => c.deleteTopic('readings', sim.cluster.now))
    expect(deleted.ok).toBe(true)
    expect(activeImage(sim).topic('readings')).toBeUndefined()
    expect(await sim.onActive((c) => c.deleteTopic('readings', sim.cluster.now))).toMatchObject({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION })
    // Two of three brokers fenced: replication factor 3 no longer fits the live brokers.
    sim.killBroker(2)
    sim.killBroker(3)
    await sim.runUntil(() => activeImage(sim).liveBrokers().length === 1, 3 * SESSION_TIMEOUT_MS, 'brokers 2 and 3 are fenced')
    expect(await sim.onActive((c) => c.createTopic({ name: 'rf3', numPartitions: 1, replicationFactor: 3 }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.INVALID_REPLICATION_FACTOR,
    })
  })

  it('fences a broker that stops heartbeating and elects new leaders from the ISR with a bumped leader epoch', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const before = activeImage(sim).topic('readings')!
    const led = [...before.partitions].filter(([, partition]) => partition.leader === 2).map(([id]) => id)
    expect(led.length).toBe(1)
    sim.killBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === true, 3 * SESSION_TIMEOUT_MS, 'broker 2 is fenced')
    await sim.runUntil(() => sim.imagesAgree(), 2000, 'the members agree')
    const after = activeImage(sim).topic('readings')!
    for (const [partitionId, partition] of after.partitions) {
      const old = before.partitions.get(partitionId)!
      expect(partition.isr).toEqual(old.isr.filter((id) => id !== 2))
      expect(partition.leader).not.toBe(2)
      expect(old.isr).toContain(partition.leader)
      expect(partition.leaderEpoch).toBe(led.includes(partitionId) ? old.leaderEpoch + 1 : old.leaderEpoch)
      expect(partition.partitionEpoch).toBe(old.partitionEpoch + 1)
    }
  })

  it('keeps the last ISR member, leaves the partition leaderless rather than elect outside the ISR, unless the topic allows it', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'clean', numPartitions: 1, replicationFactor: 3 }, sim.cluster.now))
    await committed(sim, (c) =>
      c.createTopic({ name: 'unclean', numPartitions: 1, replicationFactor: 3, configs: { 'unclean.leader.election.enable': 'true' } }, sim.cluster.now),
    )
    const partition = (name: string) => activeImage(sim).topic(name)!.partitions.get(0)!
    // Brokers 1, 2 and 3 stop in that order: each leaves the ISRs but the last, which stays without leading.
    for (const id of [1, 2, 3]) {
      sim.killBroker(id)
      await sim.runUntil(() => activeImage(sim).brokers.get(id)?.fenced === true, 3 * SESSION_TIMEOUT_MS, `broker ${id} is fenced`)
    }
    for (const name of ['clean', 'unclean']) expect(partition(name)).toMatchObject({ leader: NO_LEADER, isr: [3] })
    // Broker 1 returns: it is out of the ISR, so only the topic that allows unclean election takes it as leader.
    const uncleanEpoch = partition('unclean').leaderEpoch
    sim.reviveBroker(1)
    await sim.runUntil(() => activeImage(sim).brokers.get(1)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'broker 1 is back')
    expect(partition('clean')).toMatchObject({ leader: NO_LEADER, isr: [3] })
    expect(partition('unclean')).toMatchObject({ leader: 1, isr: [1], leaderEpoch: uncleanEpoch + 1 })
    // The last ISR member's return gives the clean partition its leader back.
    sim.reviveBroker(3)
    await sim.runUntil(() => partition('clean').leader === 3, 3 * SESSION_TIMEOUT_MS, 'the last ISR member leads again')
    expect(partition('clean').isr).toEqual([3])
  })

  it("changes the ISR at its leader's request (AlterPartition), at the current epochs, to live replicas only", async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 1, replicationFactor: 3 }, sim.cluster.now))
    const topic = activeImage(sim).topic('readings')!
    const partition = () => activeImage(sim).topic('readings')!.partitions.get(0)!
    const { leader, replicas } = partition()
    const follower = replicas.find((id) => id !== leader)!
    const request = (changes: object) => ({
      brokerId: leader,
      brokerEpoch: sim.brokers.get(leader)!.brokerEpoch!,
      topicId: topic.topicId,
      partitionIndex: 0,
      leaderEpoch: partition().leaderEpoch,
      partitionEpoch: partition().partitionEpoch,
      newIsr: replicas.filter((id) => id !== follower),
      ...changes,
    })
    const shrunk = await committed<{ partitionEpoch: number }>(sim, (c) => c.alterPartition(request({}), sim.cluster.now))
    expect(shrunk).toMatchObject({ ok: true, leaderId: leader, leaderEpoch: 0, partitionEpoch: 1 })
    expect(partition()).toMatchObject({ leader, leaderEpoch: 0, partitionEpoch: 1, isr: replicas.filter((id) => id !== follower) })
    const refusals = [
      [{ partitionEpoch: 0 }, ErrorCode.INVALID_UPDATE_VERSION],
      [{ leaderEpoch: 5 }, ErrorCode.FENCED_LEADER_EPOCH],
      [{ brokerId: follower, brokerEpoch: sim.brokers.get(follower)!.brokerEpoch! }, ErrorCode.INVALID_REQUEST],
      [{ newIsr: [follower] }, ErrorCode.INVALID_REQUEST],
      [{ newIsr: [leader, 9] }, ErrorCode.INELIGIBLE_REPLICA],
      [{ brokerEpoch: 1234n }, ErrorCode.STALE_BROKER_EPOCH],
      [{ topicId: '00000000-0000-4000-8000-00000000abcd' }, ErrorCode.UNKNOWN_TOPIC_ID],
      [{ partitionIndex: 3 }, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ] as const
    for (const [changes, errorCode] of refusals) {
      expect(await sim.onActive((c) => c.alterPartition(request(changes), sim.cluster.now)), JSON.stringify(changes, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toMatchObject({ ok: false, errorCode })
    }
    // A fenced follower cannot rejoin; once back it can.
    sim.killBroker(follower)
    await sim.runUntil(() => activeImage(sim).brokers.get(follower)?.fenced === true, 3 * SESSION_TIMEOUT_MS, 'the follower is fenced')
    expect(await sim.onActive((c) => c.alterPartition(request({ newIsr: replicas }), sim.cluster.now))).toMatchObject({ errorCode: ErrorCode.INELIGIBLE_REPLICA })
    sim.reviveBroker(follower)
    await sim.runUntil(() => activeImage(sim).brokers.get(follower)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'the follower is back')
    const grown = await committed(sim, (c) => c.alterPartition(request({ newIsr: replicas }), sim.cluster.now))
    expect(grown.ok).toBe(true)
    expect(partition()).toMatchObject({ leader, leaderEpoch: 0, isr: replicas })
  })

  it('moves leadership back to the preferred replica once it is live and in the ISR again', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const topic = activeImage(sim).topic('readings')!
    const partitionId = [...topic.partitions].find(([, partition]) => partition.replicas[0] === 2)![0]
    const partition = () => activeImage(sim).topic('readings')!.partitions.get(partitionId)!
    sim.killBroker(2)
    await sim.runUntil(() => partition().leader !== 2, 3 * SESSION_TIMEOUT_MS, 'leadership moves off broker 2')
    const moved = partition()
    sim.reviveBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'broker 2 is back')
    // Out of the ISR it is not elected, however long it waits.
    await sim.run(2 * LEADER_IMBALANCE_CHECK_INTERVAL_MS)
    expect(partition().leader).toBe(moved.leader)
    // Its leader takes it back into the ISR once it caught up; the next check makes it leader again.
    const current = partition()
    await rejoin(sim, topic.name, partitionId, 2)
    await sim.runUntil(() => partition().leader === 2, 2 * LEADER_IMBALANCE_CHECK_INTERVAL_MS, 'broker 2 leads again')
    expect(partition().leaderEpoch).toBe(current.leaderEpoch + 1)
  })

  /** Makes `brokerId` a member of the partition's ISR again, as its leader would once it caught up (AlterPartition). */
  async function rejoin(sim: ControllerSim, topicName: string, partitionId: number, brokerId: number): Promise<void> {
    const topic = activeImage(sim).topic(topicName)!
    const current = topic.partitions.get(partitionId)!
    const result = await committed(sim, (c) =>
      c.alterPartition(
        {
          brokerId: current.leader,
          brokerEpoch: sim.brokers.get(current.leader)!.brokerEpoch!,
          topicId: topic.topicId,
          partitionIndex: partitionId,
          leaderEpoch: current.leaderEpoch,
          partitionEpoch: current.partitionEpoch,
          newIsr: [...current.isr, brokerId],
        },
        sim.cluster.now,
      ),
    )
    expect(result.ok).toBe(true)
  }

  it('makes a preferred replica leader at the next tick after it rejoins the ISR, not one check interval later', async () => {
    const hourMs = 3_600_000
    const sim = await started([1, 2, 3], { leaderImbalanceCheckIntervalMs: hourMs })
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const partitionId = [...activeImage(sim).topic('readings')!.partitions].find(([, partition]) => partition.replicas[0] === 2)![0]
    const partition = () => activeImage(sim).topic('readings')!.partitions.get(partitionId)!
    sim.killBroker(2)
    await sim.runUntil(() => partition().leader !== 2, 3 * SESSION_TIMEOUT_MS, 'leadership moves off broker 2')
    sim.reviveBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'broker 2 is back')
    const before = partition()
    await rejoin(sim, 'readings', partitionId, 2)
    const rejoinedAt = sim.cluster.now
    await sim.runUntil(() => partition().leader === 2, 2000, 'broker 2 leads again')
    expect(sim.cluster.now - rejoinedAt).toBeLessThan(hourMs)
    expect(partition()).toMatchObject({ leader: 2, leaderEpoch: before.leaderEpoch + 1, isr: [...before.isr, 2] })
  })

  it('elects preferred leaders and leaderless partitions on request (ElectLeaders), answering each partition', async () => {
    const sim = await started([1, 2, 3], { autoLeaderRebalanceEnable: false })
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const partitions = () => activeImage(sim).topic('readings')!.partitions
    const ofBroker2 = [...partitions()].find(([, partition]) => partition.replicas[0] === 2)![0]
    const ofBroker1 = [...partitions()].find(([, partition]) => partition.replicas[0] === 1)![0]
    const elect = async (electionType: ElectionType, topicPartitions: { topic: string; partitions: number[] }[] | null): Promise<readonly ElectionResult[]> => {
      const result = await committed(sim, (c) => c.electLeaders({ electionType, topicPartitions }, sim.cluster.now))
      if (!result.ok) throw new Error(result.message)
      return result.results
    }
    const codes = (results: readonly ElectionResult[]) => results.map(({ topic, partitionId, errorCode }) => [topic, partitionId, errorCode])

    sim.killBroker(2)
    await sim.runUntil(() => partitions().get(ofBroker2)!.leader !== 2, 3 * SESSION_TIMEOUT_MS, 'leadership moves off broker 2')
    // Out of the ISR (and fenced) the preferred replica cannot lead; a partition its preferred replica leads needs
    // nothing; an unknown one is named; one named twice is answered once.
    expect(codes(await elect(ElectionType.PREFERRED, [{ topic: 'readings', partitions: [ofBroker2, ofBroker1, 7, ofBroker1] }, { topic: 'nothing', partitions: [0] }]))).toEqual([
      ['readings', ofBroker2, ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE],
      ['readings', ofBroker1, ErrorCode.ELECTION_NOT_NEEDED],
      ['readings', 7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['nothing', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ])
    sim.reviveBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'broker 2 is back')
    await rejoin(sim, 'readings', ofBroker2, 2)
    // Back in the ISR, with auto.leader.rebalance.enable off: it leads only when asked. Asked for every partition,
    // the answer names only the one that changed.
    await sim.run(2 * LEADER_IMBALANCE_CHECK_INTERVAL_MS)
    const before = partitions().get(ofBroker2)!
    expect(before.leader).not.toBe(2)
    expect(codes(await elect(ElectionType.PREFERRED, null))).toEqual([['readings', ofBroker2, ErrorCode.NONE]])
    expect(partitions().get(ofBroker2)).toMatchObject({ leader: 2, leaderEpoch: before.leaderEpoch + 1, isr: before.isr })

    // UNCLEAN: a partition with a leader needs none; one whose ISR is a dead broker takes a live replica outside it.
    expect(codes(await elect(ElectionType.UNCLEAN, [{ topic: 'readings', partitions: [ofBroker1] }]))).toEqual([['readings', ofBroker1, ErrorCode.ELECTION_NOT_NEEDED]])
    await committed(sim, (c) => c.createTopic({ name: 'pair', numPartitions: 1, replicationFactor: 2 }, sim.cluster.now))
    sim.uncleanElectionsAsked.add('pair')
    const pair = () => activeImage(sim).topic('pair')!.partitions.get(0)!
    const [first, second] = pair().replicas as [number, number]
    for (const id of [second, first]) {
      sim.killBroker(id)
      await sim.runUntil(() => activeImage(sim).brokers.get(id)?.fenced === true, 3 * SESSION_TIMEOUT_MS, `broker ${id} is fenced`)
    }
    expect(pair()).toMatchObject({ leader: NO_LEADER, isr: [first] })
    expect(codes(await elect(ElectionType.UNCLEAN, [{ topic: 'pair', partitions: [0] }]))).toEqual([['pair', 0, ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE]])
    sim.reviveBroker(second)
    await sim.runUntil(() => activeImage(sim).brokers.get(second)?.fenced === false, 3 * SESSION_TIMEOUT_MS, `broker ${second} is back`)
    expect(pair().leader).toBe(NO_LEADER)
    const leaderless = pair()
    expect(codes(await elect(ElectionType.UNCLEAN, [{ topic: 'pair', partitions: [0] }]))).toEqual([['pair', 0, ErrorCode.NONE]])
    expect(pair()).toMatchObject({ leader: second, isr: [second], leaderEpoch: leaderless.leaderEpoch + 1 })
  })

  it('reassigns replicas (KIP-455): grows the replica set, completes when the ISR takes the added replicas, moves a removed leader', async () => {
    const sim = await started([1, 2, 3], { autoLeaderRebalanceEnable: false })
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: -1, replicationFactor: -1, assignments: [[1, 2]] }, sim.cluster.now))
    const topic = activeImage(sim).topic('readings')!
    const partition = () => activeImage(sim).topic('readings')!.partitions.get(0)!
    const reassign = async (replicas: number[] | null) => {
      const result = await committed(sim, (c) => c.alterPartitionReassignments({ partitions: [{ topic: 'readings', partitionIndex: 0, replicas }] }, sim.cluster.now))
      if (!result.ok) throw new Error(result.message)
      return result.results.map(({ errorCode }) => errorCode)
    }
    const alterIsr = (newIsr: number[]) => {
      const { leader, leaderEpoch, partitionEpoch } = partition()
      return committed(sim, (c) => c.alterPartition({ brokerId: leader, brokerEpoch: sim.brokers.get(leader)!.brokerEpoch!, topicId: topic.topicId, partitionIndex: 0, leaderEpoch, partitionEpoch, newIsr }, sim.cluster.now))
    }
    expect(partition()).toMatchObject({ replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0 })

    // Grow: the target first, then the replica being removed; the ISR and the leader stay.
    expect(await reassign([2, 3])).toEqual([ErrorCode.NONE])
    expect(partition()).toMatchObject({ replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1], isr: [1, 2], leader: 1, leaderEpoch: 0 })
    // Partitions added meanwhile take the target's replication factor, not the three replicas of the move.
    await committed(sim, (c) => c.createPartitions({ name: 'readings', count: 2, assignments: null, validateOnly: false }, sim.cluster.now))
    expect(activeImage(sim).topic('readings')!.partitions.get(1)!.replicas).toHaveLength(2)
    // Asking again for the same target changes nothing.
    const unchanged = await sim.onActive((c) => c.alterPartitionReassignments({ partitions: [{ topic: 'readings', partitionIndex: 0, replicas: [2, 3] }] }, sim.cluster.now))
    expect(unchanged).toMatchObject({ ok: true, lastOffset: -1n })
    // The leader takes the added replica into the ISR: that completes it, and leader 1, removed, gives way to 2.
    const completed = await alterIsr([1, 2, 3])
    expect(completed).toMatchObject({ ok: true, leaderId: 2, leaderEpoch: 1, isr: [2, 3] })
    expect(partition()).toMatchObject({ replicas: [2, 3], addingReplicas: [], removingReplicas: [], isr: [2, 3], leader: 2, leaderEpoch: 1 })

    // Only removing completes at once, the leader kept with a new epoch.
    expect(await reassign([2])).toEqual([ErrorCode.NONE])
    expect(partition()).toMatchObject({ replicas: [2], isr: [2], leader: 2, leaderEpoch: 2, addingReplicas: [], removingReplicas: [] })

    // A cancel reverts the replicas being added; with none under way it is refused.
    expect(await reassign([2, 1, 3])).toEqual([ErrorCode.NONE])
    expect(partition()).toMatchObject({ replicas: [2, 1, 3], addingReplicas: [1, 3], removingReplicas: [], isr: [2] })
    await alterIsr([2, 1])
    expect(partition()).toMatchObject({ replicas: [2, 1, 3], addingReplicas: [1, 3], isr: [2, 1] })
    expect(await reassign(null)).toEqual([ErrorCode.NONE])
    expect(partition()).toMatchObject({ replicas: [2], addingReplicas: [], removingReplicas: [], isr: [2], leader: 2, leaderEpoch: 3 })
    expect(await reassign(null)).toEqual([ErrorCode.NO_REASSIGNMENT_IN_PROGRESS])

    // A new target replaces the one under way: the replica added for the old one and not in the new one goes again.
    expect(await reassign([2, 1])).toEqual([ErrorCode.NONE])
    expect(await reassign([2, 3])).toEqual([ErrorCode.NONE])
    expect(partition()).toMatchObject({ replicas: [2, 3, 1], addingReplicas: [3], removingReplicas: [1] })
    await alterIsr([2, 3])
    expect(partition()).toMatchObject({ replicas: [2, 3], addingReplicas: [], removingReplicas: [], isr: [2, 3], leader: 2 })
  })

  it('refuses reassignments it cannot make, answering each partition, and leaves the others to proceed', async () => {
    const sim = await started([1, 2, 3], { autoLeaderRebalanceEnable: false })
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: -1, replicationFactor: -1, assignments: [[1], [2]] }, sim.cluster.now))
    const result = await committed(sim, (c) =>
      c.alterPartitionReassignments(
        {
          partitions: [
            { topic: 'readings', partitionIndex: 0, replicas: [] },
            { topic: 'readings', partitionIndex: 0, replicas: [3] },
            { topic: 'readings', partitionIndex: 1, replicas: [3, 3] },
            { topic: 'readings', partitionIndex: 2, replicas: [1] },
            { topic: 'nothing', partitionIndex: 0, replicas: [1] },
          ],
        },
        sim.cluster.now,
      ),
    )
    if (!result.ok) throw new Error(result.message)
    expect(result.results.map(({ topic, partitionIndex, errorCode }) => [topic, partitionIndex, errorCode])).toEqual([
      ['readings', 0, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      ['readings', 1, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      ['readings', 2, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      ['nothing', 0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
    ])
    const refused = await sim.onActive((c) => c.alterPartitionReassignments({ partitions: [{ topic: 'readings', partitionIndex: 1, replicas: [9] }] }, sim.cluster.now))
    expect(refused).toMatchObject({ ok: true, results: [{ errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: expect.stringContaining('broker 9, which is not registered') }] })
    // A cancel that would leave no replica of the old set in the ISR needs an unclean election: refused.
    await committed(sim, (c) => c.alterPartitionReassignments({ partitions: [{ topic: 'readings', partitionIndex: 1, replicas: [3] }] }, sim.cluster.now))
    const partition = () => activeImage(sim).topic('readings')!.partitions.get(1)!
    expect(partition()).toMatchObject({ replicas: [3, 2], addingReplicas: [3], removingReplicas: [2], isr: [2], leader: 2 })
    const topicId = activeImage(sim).topic('readings')!.topicId
    const { leaderEpoch, partitionEpoch } = partition()
    const done = await committed(sim, (c) => c.alterPartition({ brokerId: 2, brokerEpoch: sim.brokers.get(2)!.brokerEpoch!, topicId, partitionIndex: 1, leaderEpoch, partitionEpoch, newIsr: [2, 3] }, sim.cluster.now))
    expect(done).toMatchObject({ ok: true, leaderId: 3, isr: [3] })
    expect(partition()).toMatchObject({ replicas: [3], isr: [3], leader: 3, leaderEpoch: leaderEpoch + 1 })
    expect(sim.imagesAgree()).toBe(true)
  })

  it('fences a broker that asks for a controlled shutdown, moving its leaderships, and lets it stop once the others applied that', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const before = activeImage(sim).topic('readings')!
    const led = [...before.partitions].filter(([, partition]) => partition.leader === 2).map(([id]) => id)
    const brokerEpoch = sim.brokers.get(2)!.brokerEpoch!
    // The simulated broker stops its own heartbeats: only the shutdown requests below speak for it.
    sim.killBroker(2)
    const shutDown = (currentMetadataOffset: bigint) =>
      sim.request((c) => c.heartbeat({ brokerId: 2, brokerEpoch, currentMetadataOffset, wantFence: false, wantShutDown: true }, sim.cluster.now))
    const first = await shutDown(activeImage(sim).provenance.offset)
    expect(first).toMatchObject({ ok: true, isFenced: true, shouldShutDown: false })
    const fencedAt = first.ok ? first.lastOffset : -1n
    await sim.runUntil(() => activeImage(sim).provenance.offset >= fencedAt, 2000, 'the fencing commits')
    const after = activeImage(sim).topic('readings')!
    expect(activeImage(sim).brokers.get(2)?.fenced).toBe(true)
    for (const [partitionId, partition] of after.partitions) {
      const old = before.partitions.get(partitionId)!
      expect(partition.isr).toEqual(old.isr.filter((id) => id !== 2))
      expect(partition.leader).not.toBe(2)
      expect(partition.leaderEpoch).toBe(led.includes(partitionId) ? old.leaderEpoch + 1 : old.leaderEpoch)
    }
    // Not before the broker itself applied its fencing; then once brokers 1 and 3 heartbeat past it.
    expect(await shutDown(fencedAt - 1n)).toMatchObject({ ok: true, shouldShutDown: false })
    await sim.run(2 * HEARTBEAT_INTERVAL_MS)
    expect(await shutDown(fencedAt)).toMatchObject({ ok: true, isFenced: true, shouldShutDown: true })
    // A fenced broker asking to stop is never unfenced by it, however caught up it is.
    expect(activeImage(sim).brokers.get(2)?.fenced).toBe(true)
  })

  it('unregisters a broker that died (UnregisterBroker): gone from the image and its snapshot, out of its ISRs and leaderships, its replicas kept', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    await committed(sim, (c) => c.createTopic({ name: 'only-on-2', numPartitions: -1, replicationFactor: -1, assignments: [[2]] }, sim.cluster.now))
    const before = activeImage(sim)
    const led = [...before.topic('readings')!.partitions].filter(([, partition]) => partition.leader === 2).map(([id]) => id)
    expect(led.length).toBe(1)
    const brokerEpoch = sim.brokers.get(2)!.brokerEpoch!
    // Broker 2 is killed and unregistered at once, before its session runs out: still unfenced, as Kafka allows.
    sim.killBroker(2)
    expect(before.brokers.get(2)?.fenced).toBe(false)
    const result = await committed(sim, (c) => c.unregisterBroker(2, sim.cluster.now))
    expect(result).toMatchObject({ ok: true, brokerEpoch })
    await sim.runUntil(() => sim.imagesAgree(), 2000, 'the members agree')
    const after = activeImage(sim)
    expect([...after.brokers.keys()].sort()).toEqual([1, 3])
    expect(after.liveBrokers()).toEqual([1, 3])
    for (const [partitionId, partition] of after.topic('readings')!.partitions) {
      const old = before.topic('readings')!.partitions.get(partitionId)!
      expect(partition.replicas).toEqual(old.replicas)
      expect(partition.isr).toEqual(old.isr.filter((id) => id !== 2))
      expect(partition.leader).not.toBe(2)
      expect(old.isr).toContain(partition.leader)
      expect(partition.leaderEpoch).toBe(led.includes(partitionId) ? old.leaderEpoch + 1 : old.leaderEpoch)
    }
    // The last ISR member stays in the ISR, leading nothing (Kafka without ELR).
    const lone = before.topic('only-on-2')!.partitions.get(0)!
    expect(after.topic('only-on-2')!.partitions.get(0)).toMatchObject({ replicas: [2], isr: [2], leader: NO_LEADER, leaderEpoch: lone.leaderEpoch + 1 })
    // A snapshot holds the result: restored, it has no broker 2.
    const restored = restoreMetadataSnapshot(encodeMetadataSnapshot(after), after.provenance)
    expect([...restored.brokers.keys()].sort()).toEqual([1, 3])
    expect(restored.topic('only-on-2')!.partitions.get(0)).toEqual(after.topic('only-on-2')!.partitions.get(0))
    // Unknown ids, and broker 2 a second time, are BROKER_ID_NOT_REGISTERED and write nothing.
    for (const brokerId of [2, 7, -1]) {
      expect(await sim.onActive((c) => c.unregisterBroker(brokerId, sim.cluster.now))).toMatchObject({ ok: false, errorCode: ErrorCode.BROKER_ID_NOT_REGISTERED })
    }
    // Sessions go on: nothing fences or mentions broker 2 any more.
    await sim.run(3 * SESSION_TIMEOUT_MS)
    expect([...activeImage(sim).brokers.keys()].sort()).toEqual([1, 3])
    // A reassignment moves a partition off it (at once: nothing is added); a target naming it is refused.
    const moved = await committed<{ results: readonly { errorCode: number }[] }>(sim, (c) =>
      c.alterPartitionReassignments({ partitions: [{ topic: 'readings', partitionIndex: 0, replicas: [1, 3] }, { topic: 'readings', partitionIndex: 1, replicas: [2, 1, 3] }] }, sim.cluster.now),
    )
    expect(moved.ok && moved.results.map((result) => result.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.INVALID_REPLICA_ASSIGNMENT])
    expect(activeImage(sim).topic('readings')!.partitions.get(0)).toMatchObject({ replicas: [1, 3], addingReplicas: [], removingReplicas: [] })
    // The node comes back: it registers again at a new epoch, is unfenced once caught up and leads its lone partition.
    sim.reviveBroker(2)
    await sim.runUntil(() => activeImage(sim).brokers.get(2)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'broker 2 is back')
    expect(activeImage(sim).brokers.get(2)!.brokerEpoch).toBeGreaterThan(brokerEpoch)
    expect(activeImage(sim).topic('only-on-2')!.partitions.get(0)).toMatchObject({ isr: [2], leader: 2 })
  })

  it('unregisters a live broker too, as Kafka does: its heartbeats at the old epoch are refused, and it registers again', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const brokerEpoch = sim.brokers.get(3)!.brokerEpoch!
    const result = await committed(sim, (c) => c.unregisterBroker(3, sim.cluster.now))
    expect(result).toMatchObject({ ok: true, brokerEpoch })
    expect(activeImage(sim).brokers.has(3)).toBe(false)
    for (const partition of activeImage(sim).topic('readings')!.partitions.values()) {
      expect(partition.isr).not.toContain(3)
      expect(partition.leader).not.toBe(3)
    }
    expect(
      await sim.onActive((c) => c.heartbeat({ brokerId: 3, brokerEpoch, currentMetadataOffset: activeImage(sim).provenance.offset, wantFence: false, wantShutDown: false }, sim.cluster.now)),
    ).toMatchObject({ ok: false, errorCode: ErrorCode.BROKER_ID_NOT_REGISTERED })
    // The simulated broker, like a Brook node, registers again when its heartbeat is refused.
    await sim.runUntil(() => activeImage(sim).brokers.get(3)?.fenced === false, 3 * SESSION_TIMEOUT_MS, 'broker 3 registers again')
    expect(activeImage(sim).brokers.get(3)!.brokerEpoch).toBeGreaterThan(brokerEpoch)
  })

  it('hands out producer-id blocks of 1000, each once, to registered brokers at their epoch', async () => {
    const sim = await started()
    const broker = sim.brokers.get(1)!
    const starts: bigint[] = []
    for (let i = 0; i < 3; i++) {
      const result = await committed<{ producerIdStart: bigint; producerIdLen: number }>(sim, (c) =>
        c.allocateProducerIds({ brokerId: 1, brokerEpoch: broker.brokerEpoch! }, sim.cluster.now),
      )
      if (!result.ok) throw new Error(result.message)
      expect(result.producerIdLen).toBe(1000)
      starts.push(result.producerIdStart)
    }
    expect(starts).toEqual([0n, 1000n, 2000n])
    expect(await sim.onActive((c) => c.allocateProducerIds({ brokerId: 1, brokerEpoch: broker.brokerEpoch! - 1n }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.STALE_BROKER_EPOCH,
    })
    expect(await sim.onActive((c) => c.allocateProducerIds({ brokerId: 9, brokerEpoch: 0n }, sim.cluster.now))).toMatchObject({
      errorCode: ErrorCode.BROKER_ID_NOT_REGISTERED,
    })
    expect(activeImage(sim).producerIds.nextProducerId).toBe(3000n)
  })

  it("fences the broker of a crashed controller's node one session after it was last heard, not one session after the next controller took over", async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    await sim.run(HEARTBEAT_INTERVAL_MS * 2)
    // The node of the active controller dies, its broker with it.
    const old = sim.activeIds()[0]!
    const crashedAt = sim.cluster.now
    sim.killBroker(old)
    sim.cluster.crash(old)
    await sim.runUntil(() => sim.activeIds().length === 1, 5000, 'another controller is active')
    const tookOverAt = sim.cluster.now
    await sim.runUntil(() => activeImage(sim).brokers.get(old)?.fenced === true, 3 * SESSION_TIMEOUT_MS, `broker ${old} is fenced`)
    // The simulation steps 50 ms at a time: the fence is due once the session ran out, at the next step.
    expect(sim.cluster.now - crashedAt).toBeLessThanOrEqual(SESSION_TIMEOUT_MS + 100)
    expect(sim.cluster.now - tookOverAt).toBeLessThan(SESSION_TIMEOUT_MS)
    for (const partition of activeImage(sim).topic('readings')!.partitions.values()) expect(partition.leader).not.toBe(old)
    // The others, heard by the new controller only after it took over, kept their sessions.
    expect(activeImage(sim).liveBrokers()).toEqual([1, 2, 3].filter((id) => id !== old))
  })

  it('keeps the broker of a controller that lost its leadership but lives: its heartbeats to the new controller renew its session', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 3, replicationFactor: 3 }, sim.cluster.now))
    const old = sim.activeIds()[0]!
    // Only the controller member stops (as in a long pause of its quorum work); its broker goes on heartbeating.
    sim.cluster.crash(old)
    await sim.runUntil(() => sim.activeIds().length === 1, 5000, 'another controller is active')
    const end = sim.cluster.now + 3 * SESSION_TIMEOUT_MS
    while (sim.cluster.now < end) {
      await sim.run(50)
      expect(activeImage(sim).brokers.get(old)?.fenced).toBe(false)
    }
  })

  it('answers NOT_CONTROLLER, and goes on, when the proposal of an operation finds its leadership over (a node stopped past its check-quorum)', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'readings', numPartitions: 1, replicationFactor: 3 }, sim.cluster.now))
    const old = sim.activeIds()[0]!
    const image = activeImage(sim)
    const topic = image.topic('readings')!
    const partition = topic.partitions.get(0)!
    // The active controller's node stops (SIGSTOP, a stalled event loop) for longer than its check-quorum timeout;
    // the others elect a new controller meanwhile.
    sim.cluster.pause(old)
    await sim.runUntil(() => sim.activeIds().length === 1, 10_000, 'another controller is active')
    await sim.run(3000)
    // When it goes on, the first thing it runs is an AlterPartition (its node's ISR check fired while it was stopped):
    // the proposal is appended, and the Raft poll right after it finds the check-quorum expired and resigns.
    let answer: ControllerResult<unknown> | null = null
    await sim.cluster.resume(old, {
      first: () => {
        answer = sim.controller(old)!.alterPartition(
          {
            brokerId: partition.leader,
            brokerEpoch: image.brokers.get(partition.leader)!.brokerEpoch,
            topicId: topic.topicId,
            partitionIndex: 0,
            leaderEpoch: partition.leaderEpoch,
            partitionEpoch: partition.partitionEpoch,
            newIsr: [partition.leader],
          },
          sim.cluster.now,
        )
      },
    })
    expect(answer).toMatchObject({ ok: false, errorCode: ErrorCode.NOT_CONTROLLER })
    expect(sim.controller(old)!.activeEpoch).toBeNull()
    await sim.runUntil(() => sim.images().length === 3 && sim.imagesAgree(), 5000, 'the old controller follows the new one')
    expect(sim.activeIds()).not.toContain(old)
  })

  it('fails over: a new controller is elected when the active one crashes, and its image has everything committed', async () => {
    const sim = await started()
    await committed(sim, (c) => c.createTopic({ name: 'before', numPartitions: 2, replicationFactor: 2 }, sim.cluster.now))
    const old = sim.activeIds()[0]!
    sim.cluster.crash(old)
    await sim.runUntil(() => sim.activeIds().length === 1, 5000, 'another controller is active')
    expect(sim.activeIds()[0]).not.toBe(old)
    expect(activeImage(sim).topic('before')).toBeDefined()
    const created = await committed(sim, (c) => c.createTopic({ name: 'after', numPartitions: 1, replicationFactor: 3 }, sim.cluster.now))
    expect(created.ok).toBe(true)
    await sim.cluster.restart(old)
    await sim.runUntil(() => sim.images().length === 3 && sim.imagesAgree(), 5000, 'the old controller catches up')
    expect(sim.controller(old)!.image.topic('after')).toBeDefined()
    // Brokers kept their sessions across the failover: the new controller gave each a full session.
    expect(activeImage(sim).liveBrokers()).toEqual([1, 2, 3])
  })
})

/**
 * The admin commands on a three-node cluster that loses nodes, as a user runs them (the built CLI, its exit code,
 * stdout and stderr) against real node processes. The commands the active controller runs (topics create, delete,
 * alter-config, add-partitions) keep working when the controller is killed with SIGKILL: they ask Metadata again and
 * go to the controller the quorum elects (or to a node that forwards), within their 30 s; with no quorum left the
 * node that forwards them answers REQUEST_TIMED_OUT once its 60 s (Kafka's forwarding timeout) are spent, and they
 * fail in one line saying so and that the outcome is unknown, without sending the change again; an idempotent
 * `produce` fails once its 30 s are spent, saying why it has no producer id. `topics describe` prints every partition while a dead leader is not yet
 * fenced, that partition's offsets unavailable with the reason, and after waiting out a stopped (SIGSTOP) leader it
 * prints the leaders elected meanwhile. The group and transaction commands wait out a dead
 * coordinator, leader or listed node until the controller fences it and what it held moves, and the group commands,
 * produce and consume wait for a node restarted a moment ago, still catching up, to take its partitions back; produce
 * keeps a partition's records in order while it waits out the partition's killed leader; consume follows a partition
 * whose leader is killed to the leader elected after it.
 *
 * The tests mostly wait (for a dead node to be fenced, for a forwarding node's 60 s without a quorum), so they run as three
 * lanes side by side, each on a cluster of its own that serves its tests one after another: a test that kills nodes
 * starts them again and waits until they are live brokers before it ends. One cluster fences a dead node after
 * Kafka's 9 s (broker.session.timeout.ms), which the tests reading a dead leader before it is fenced need; the others
 * after 3 s (QUICK_CLUSTER_ARGS), so that their tests wait less for a dead node to be fenced and for a restarted one to
 * register again (its old registration must have expired first). The third serves the test without a quorum alone.
 */
import { describe, expect, it } from 'vitest'
import { QUICK_CLUSTER_ARGS, useCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/wait.js'
import { withClient } from '../helpers/kafka.js'
import { findGroupCoordinator } from '../helpers/groups-wire.js'
import { ErrorCode } from '../../protocol/errors.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'
import { brook, expectOneLineError, lines, spawnBrook, until } from './run-brook.js'

/** A lane's cluster and what its tests do to it. */
interface Lane {
  cluster: TestCluster
  /** --bootstrap-server naming every node, so that a command finds a live one whichever is dead. */
  server: string[]
  /** The active controller, as a live node names it. */
  controllerId(): Promise<number>
  /**
   * Kills the nodes of `ids` with SIGKILL, runs `test` against the survivors, then (even when `test` failed, so that
   * the next test finds the whole cluster) starts them again and waits until all three are live brokers.
   */
  whileKilled(ids: readonly number[], test: () => Promise<void>): Promise<void>
  /**
   * Kills the nodes of `ids` with SIGKILL and starts them again on their data directories at once, then runs `test`
   * without waiting for them to be live, unfenced brokers again (their partitions and coordinators still settling),
   * and at the end (even when `test` failed) waits until all three are.
   */
  rightAfterRestart(ids: readonly number[], test: () => Promise<void>): Promise<void>
}

/** A cluster of three nodes for the tests of the enclosing describe block (`useCluster`), as the accessor of its Lane. */
function clusterLane(extraArgs: readonly string[]): () => Lane {
  const running = useCluster({ nodes: 3, extraArgs })
  return () => {
    const cluster = running()
    const threeUnfenced = (id: number): Promise<boolean> =>
      waitFor('three unfenced brokers', async () => {
        const status = await cluster.status(id)
        return status.controllerId >= 0 && status.liveBrokers.length === 3
      })
    return {
      cluster,
      server: ['--bootstrap-server', cluster.nodeIds.map((id) => cluster.nodes.get(id)!.address).join(',')],
      controllerId: () =>
        waitFor('an active controller', async () => {
          for (const id of cluster.nodeIds) {
            const status = await cluster.status(id).catch(() => null)
            if (status && status.controllerId >= 0) return status.controllerId
          }
          return undefined
        }),
      async whileKilled(ids, test) {
        await Promise.all(ids.map((id) => cluster.nodes.get(id)!.kill()))
        try {
          await test()
        } finally {
          await Promise.all(ids.map((id) => cluster.restart(id)))
          await threeUnfenced(ids[0]!)
        }
      },
      async rightAfterRestart(ids, test) {
        await Promise.all(ids.map((id) => cluster.nodes.get(id)!.kill()))
        try {
          await Promise.all(ids.map((id) => cluster.restart(id)))
          await test()
        } finally {
          await threeUnfenced(ids[0]!)
        }
      },
    }
  }
}

/** The partition lines of `topics describe`, by partition: the fields of each as name -> value. */
function partitionsOf(stdout: string): Map<number, Map<string, string>> {
  const found = new Map<number, Map<string, string>>()
  for (const line of lines(stdout).filter((l) => l.startsWith('\t'))) {
    const fields = new Map(line.trim().split('\t').map((field) => [field.slice(0, field.indexOf(': ')), field.slice(field.indexOf(': ') + 2)] as const))
    found.set(Number(fields.get('Partition')), fields)
  }
  return found
}

/**
 * `topic`'s partitions as `topics describe` printed them through `lane`, the active controller, and a node leading one
 * of those partitions that is not the controller (stopping it leaves the quorum its leader; only partitions' leaders
 * are at stake).
 */
async function leaderBesideController(lane: Lane, topic: string): Promise<{ controller: number; before: Map<number, Map<string, string>>; victim: number }> {
  const controller = await lane.controllerId()
  const before = partitionsOf((await brook(['topics', 'describe', topic, ...lane.server])).stdout)
  const victim = Number([...before.values()].map((fields) => fields.get('Leader')).find((leader) => leader !== String(controller)))
  return { controller, before, victim }
}

describe('brook topics on a cluster that loses nodes', () => {
  // Heartbeats every 500 ms (Kafka's 2 s would leave a restarted node fenced longer), fenced after Kafka's 9 s.
  describe("whose controller fences a dead node after Kafka's 9 s", { concurrent: true }, () => {
    const lane = clusterLane(['--broker-heartbeat-interval-ms', '500'])
    it.sequential('add-partitions grows a replicated topic through the controller and refuses a count not above the current one', async () => {
      const { server } = lane()
      expect((await brook(['topics', 'create', 'grown', '--partitions', '2', '--replication-factor', '3', ...server])).code).toBe(0)
      const added = await brook(['topics', 'add-partitions', 'grown', '--partitions', '5', ...server])
      expect(added).toMatchObject({ code: 0, stdout: 'Topic grown now has 5 partitions.\n', stderr: '' })

      const described = await brook(['topics', 'describe', 'grown', ...server])
      expect(described.code).toBe(0)
      expect(lines(described.stdout)[0]).toMatch(/\tPartitionCount: 5\tReplicationFactor: 3\t/)
      const partitions = partitionsOf(described.stdout)
      expect([...partitions.keys()].sort()).toEqual([0, 1, 2, 3, 4])
      for (const fields of partitions.values()) {
        expect(fields.get('Replicas')!.split(',').sort()).toEqual(['1', '2', '3'])
        expect(fields.get('LogEndOffset')).toBe('0')
      }

      // Kafka's words (ReplicationControlManager), whichever node the command reached.
      expectOneLineError(await brook(['topics', 'add-partitions', 'grown', '--partitions', '5', ...server]), "cannot add partitions to topic 'grown': INVALID_PARTITIONS (Topic already has 5 partition(s).)")
      expectOneLineError(
        await brook(['topics', 'add-partitions', 'grown', '--partitions', '3', ...server]),
        "cannot add partitions to topic 'grown': INVALID_PARTITIONS (The topic grown currently has 5 partition(s); 3 would not be an increase.)",
      )
      expectOneLineError(await brook(['topics', 'add-partitions', 'missing', '--partitions', '3', ...server]), "cannot add partitions to topic 'missing': UNKNOWN_TOPIC_OR_PARTITION")
    })

    it.sequential('create, alter-config, add-partitions, describe and delete succeed against the survivors right after the controller is killed', async () => {
      const { server, controllerId, whileKilled } = lane()
      expect((await brook(['topics', 'create', 'before', '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      await whileKilled([await controllerId()], async () => {
        // Two live brokers are left (or three, while the dead one is not yet fenced): a replication factor of 2 fits both.
        const created = await brook(['topics', 'create', 'after', '--partitions', '2', '--replication-factor', '2', ...server])
        expect(created).toMatchObject({ code: 0, stdout: 'Created topic after.\n', stderr: '' })
        const altered = await brook(['topics', 'alter-config', 'before', '--set', 'retention.ms=3600000', ...server])
        expect(altered).toMatchObject({ code: 0, stdout: 'Completed updating config for topic before.\n', stderr: '' })
        const grown = await brook(['topics', 'add-partitions', 'after', '--partitions', '3', ...server])
        expect(grown).toMatchObject({ code: 0, stdout: 'Topic after now has 3 partitions.\n', stderr: '' })

        const described = await brook(['topics', 'describe', 'before', ...server])
        expect(described).toMatchObject({ code: 0, stderr: '' })
        expect(lines(described.stdout)[0]).toMatch(/\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: retention.ms=3600000$/)
        expect([...partitionsOf(described.stdout).keys()].sort()).toEqual([0, 1, 2])
        expect(partitionsOf((await brook(['topics', 'describe', 'after', ...server])).stdout).size).toBe(3)

        const deleted = await brook(['topics', 'delete', 'after', ...server])
        expect(deleted).toMatchObject({ code: 0, stdout: 'Deleted topic after.\n', stderr: '' })
        expect(lines((await brook(['topics', 'list', ...server])).stdout)).not.toContain('after')
      })
    })

    it.sequential('describe, having waited out a stopped leader, prints the leaders and ISR elected meanwhile', async () => {
      const { cluster, server } = lane()
      expect((await brook(['topics', 'create', 'paused-lead', '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      const { controller, victim } = await leaderBesideController(lane(), 'paused-lead')
      // The stopped node last, so that the first Metadata is not asked of it.
      const live = ['--bootstrap-server', [...cluster.nodeIds.filter((id) => id !== victim), victim].map((id) => cluster.nodes.get(id)!.address).join(',')]
      const stopped = cluster.nodes.get(victim)!.child
      stopped.kill('SIGSTOP')
      try {
        // Its ListOffsets waits the request timeout (30 s); the controller fences the node after 9 s (long enough for
        // the command to read Metadata first, even on a loaded machine) and elects new leaders meanwhile, which the
        // description shows, with their offsets, not the Metadata read before the wait.
        const described = await brook(['topics', 'describe', 'paused-lead', ...live])
        expect(described).toMatchObject({ code: 0, stderr: '' })
        const partitions = partitionsOf(described.stdout)
        expect([...partitions.keys()].sort()).toEqual([0, 1, 2])
        for (const [index, fields] of partitions) {
          expect(fields.get('Leader'), `partition ${index}`).not.toBe(String(victim))
          expect(fields.get('Isr')!.split(','), `partition ${index}`).not.toContain(String(victim))
          // The offsets of the partitions it led: asked again of the leader elected meanwhile, so that they agree with
          // the leader printed beside them (they were "unavailable: leader <stopped node> ..." before).
          expect(fields.has('OffsetsUnavailable'), `partition ${index}: ${[...fields].join(' ')}`).toBe(false)
          expect(fields.get('LogEndOffset'), `partition ${index}`).toMatch(/^\d+$/)
        }
      } finally {
        stopped.kill('SIGCONT')
        await waitFor('three unfenced brokers', async () => (await cluster.status(controller)).liveBrokers.length === 3)
      }
    })

    it.sequential('describe prints every partition while a killed leader is not yet fenced, its offsets unavailable with the reason', async () => {
      const { server, whileKilled } = lane()
      expect((await brook(['topics', 'create', 'spread', '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      const { victim } = await leaderBesideController(lane(), 'spread')
      await whileKilled([victim], async () => {
        // Until the controller fences it (broker.session.timeout.ms, 9 s), Metadata still names the dead node the leader.
        const described = await brook(['topics', 'describe', 'spread', ...server])
        expect(described).toMatchObject({ code: 0, stderr: '' })
        const partitions = partitionsOf(described.stdout)
        expect([...partitions.keys()].sort()).toEqual([0, 1, 2])
        const deadLed = [...partitions.values()].filter((fields) => fields.get('Leader') === String(victim))
        expect(deadLed.length).toBeGreaterThan(0)
        for (const fields of partitions.values()) {
          expect(fields.get('Replicas')!.split(',').sort()).toEqual(['1', '2', '3'])
          expect(fields.get('Isr')).toMatch(/^\d(,\d)*$/)
          if (fields.get('Leader') === String(victim)) {
            expect(fields.get('LogStartOffset')).toBe('unavailable')
            expect(fields.get('LogEndOffset')).toBe('unavailable')
            expect(fields.get('OffsetsUnavailable')).toMatch(new RegExp(`^leader ${victim} unreachable \\(cannot connect to a broker at .+\\)$`))
          } else {
            expect(fields.get('LogEndOffset')).toBe('0')
            expect(fields.has('OffsetsUnavailable')).toBe(false)
          }
        }
      })
    })

    it.sequential('groups describe, groups list, transactions list, topics log-dirs and describe-producers wait out a killed coordinator and leader until they move, saying which node they wait for', async () => {
      const { server, whileKilled } = lane()
      expect((await brook(['topics', 'create', 'ledger', '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      // Right after a test that restarted a node: a leader that has not yet learned of the topic refuses it for a moment,
      // and the console producer sends again. On failure the diff shows why (stderr).
      expect(await brook(['produce', 'ledger', ...server], { input: 'a\nb\nc\n' })).toMatchObject({ code: 0, stderr: expect.stringMatching(/^produced 3 records in /) })
      // The group's coordinator, or a ledger partition's leader, may be the node the previous test restarted, still
      // loading __consumer_offsets or taking its partitions back: the command waits for it.
      expect(await brook(['groups', 'reset-offsets', 'auditors', '--topic', 'ledger', '--to-latest', '--execute', ...server])).toMatchObject({ code: 0, stderr: '' })
      const coordinatorOf = async (): Promise<number> => {
        const state = await brook(['groups', 'describe', 'auditors', '--state', ...server])
        expect(state.code).toBe(0)
        return Number(/^auditors\s+\S+ \((\d+)\)/m.exec(state.stdout)![1])
      }
      const victim = await coordinatorOf()
      // Three partitions on three nodes: the controller gives each node the lead of one.
      const led = [...partitionsOf((await brook(['topics', 'describe', 'ledger', ...server])).stdout)].find(([, fields]) => fields.get('Leader') === String(victim))
      expect(led).toBeDefined()
      const producersOf = ['transactions', 'describe-producers', '--topic', 'ledger', '--partition', String(led![0]), ...server]
      const producersBefore = await brook(producersOf)
      expect(producersBefore.code).toBe(0)
      await whileKilled([victim], async () => {
        // Asked at once, while the dead node is still listed, leads a ledger partition and coordinates the group: each
        // waits until the controller fences it, and its partitions (of ledger, of __consumer_offsets) have new leaders.
        const producers = brook(producersOf)
        const transactions = brook(['transactions', 'list', ...server])
        const logDirs = brook(['topics', 'log-dirs', 'ledger', ...server])
        const described = await brook(['groups', 'describe', 'auditors', ...server])
        // Kafka's tool says so too, on stderr.
        expect(described).toMatchObject({ code: 0, stderr: "Consumer group 'auditors' has no active members.\n" })
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG: the committed offsets are the log ends, 3 records in all.
        // The partition the dead node led shows '-' for its log end and lag (as Kafka's tool does) while the node is
        // still its leader, unfenced; the coordinator having moved, it has mostly been fenced by now.
        const rows = lines(described.stdout).slice(1).map((line) => line.split(/\s+/))
        expect(rows.map(([group, topic, partition]) => [group, topic, partition])).toEqual([0, 1, 2].map((p) => ['auditors', 'ledger', String(p)]))
        for (const [, , partition, current, end, lag] of rows) {
          if (end === '-' && Number(partition) === led![0]) expect(lag).toBe('-')
          else expect([current, lag]).toEqual([end, '0'])
        }
        expect(rows.reduce((sum, row) => sum + Number(row[3]), 0)).toBe(3)
        expect(await coordinatorOf()).not.toBe(victim)

        const listed = await brook(['groups', 'list', ...server])
        expect(listed).toMatchObject({ code: 0, stderr: '' })
        expect(lines(listed.stdout).map((line) => line.split(/\s+/)[0])).toContain('auditors')
        // A command asking every node says which node it waits for, and why, rather than nothing for seconds; then
        // answers for the live nodes, as Kafka's tools do.
        const waiting = new RegExp(`^brook: node ${victim} cannot be reached \\(cannot connect to a broker at [^)]+\\); waiting until the controller fences it \\(up to 30 s\\), then asking the live nodes\\n$`)
        expect(await transactions).toMatchObject({ code: 0, stdout: '', stderr: expect.stringMatching(waiting) })
        const dirs = await logDirs
        expect(dirs).toMatchObject({ code: 0, stderr: expect.stringMatching(waiting) })
        expect(dirs.stdout.match(/^Node \d+/gm)!.sort()).toEqual([1, 2, 3].filter((id) => id !== victim).map((id) => `Node ${id}`))
        // The new leader knows the partition's producers from the replicated batches.
        expect(await producers).toMatchObject({ code: 0, stdout: producersBefore.stdout, stderr: '' })
      })
    })

    it.sequential('group commands, produce and consume wait for a node restarted a moment ago instead of failing', async () => {
      const { cluster, server, rightAfterRestart } = lane()
      for (const topic of ['rebooted', 'reborn']) expect((await brook(['topics', 'create', topic, '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      expect(await brook(['produce', 'rebooted', ...server], { input: 'a\nb\nc\n' })).toMatchObject({ code: 0, stderr: expect.stringMatching(/^produced 3 records in /) })
      // One coordinator for the three groups: their ids hash to the same __consumer_offsets partition (39 of 50).
      const [described, rewound, deleted] = ['resetters', 'rewinders', 'retreaters']
      for (const group of [described, rewound, deleted]) {
        expect(await brook(['groups', 'reset-offsets', group, '--topic', 'rebooted', '--to-latest', '--execute', ...server])).toMatchObject({ code: 0, stderr: '' })
      }
      const state = await brook(['groups', 'describe', rewound, '--state', ...server])
      const victim = Number(/^rewinders\s+\S+ \((\d+)\)/m.exec(state.stdout)![1])
      expect((await brook(['groups', 'describe', deleted, '--state', ...server])).stdout).toMatch(new RegExp(`^retreaters\\s+\\S+ \\(${victim}\\)`, 'm'))
      // Three partitions on three nodes: the groups' coordinator leads one of them too.
      expect([...partitionsOf((await brook(['topics', 'describe', 'rebooted', ...server])).stdout).values()].map((fields) => fields.get('Leader'))).toContain(String(victim))
      const newOffsets = (stdout: string): number[] => lines(stdout).slice(1).map((line) => Number(line.split(/\s+/)[3]))
      // The restarted node first: it reads no request before it has caught up with the metadata log, so its Metadata
      // never says that 'reborn', created while it was down, does not exist.
      const viaRestarted = ['--bootstrap-server', [victim, ...cluster.nodeIds.filter((id) => id !== victim)].map((id) => cluster.nodes.get(id)!.address).join(',')]
      await rightAfterRestart([victim], async () => {
        // All at once, while the restarted node catches up on the metadata log (and learns of 'reborn', created a moment
        // before), loads __consumer_offsets and takes its partitions back: each command waits for it (or for the node
        // that takes over) instead of failing.
        const [description, earliest, removal, produced, consumed, producedToNew] = await Promise.all([
          brook(['groups', 'describe', described, ...viaRestarted]),
          brook(['groups', 'reset-offsets', rewound, '--topic', 'rebooted', '--to-earliest', '--execute', ...viaRestarted]),
          brook(['groups', 'delete', deleted, ...viaRestarted]),
          brook(['produce', 'rebooted', ...viaRestarted], { input: 'd\ne\nf\n' }),
          brook(['consume', 'rebooted', '--from-beginning', '--max-messages', '3', '--timeout-ms', '30000', ...viaRestarted]),
          brook(['produce', 'reborn', ...viaRestarted], { input: 'x\ny\nz\n' }),
        ])
        expect(description).toMatchObject({ code: 0, stderr: "Consumer group 'resetters' has no active members.\n" })
        expect(lines(description.stdout).slice(1).reduce((sum, line) => sum + Number(line.split(/\s+/)[3]), 0)).toBe(3)
        expect(earliest).toMatchObject({ code: 0, stderr: '' })
        expect(newOffsets(earliest.stdout)).toEqual([0, 0, 0])
        expect(removal).toMatchObject({ code: 0, stdout: 'Deleted consumer group retreaters.\n', stderr: '' })
        expect(produced).toMatchObject({ code: 0, stderr: expect.stringMatching(/^produced 3 records in /) })
        expect(producedToNew).toMatchObject({ code: 0, stderr: expect.stringMatching(/^produced 3 records in /) })
        expect(consumed).toMatchObject({ code: 0, stderr: 'Processed a total of 3 messages\n' })
        expect(lines(consumed.stdout)).toHaveLength(3)
        for (const value of lines(consumed.stdout)) expect(['a', 'b', 'c', 'd', 'e', 'f']).toContain(value)

        const latest = await brook(['groups', 'reset-offsets', rewound, '--topic', 'rebooted', '--to-latest', '--execute', ...viaRestarted])
        expect(latest).toMatchObject({ code: 0, stderr: '' })
        expect(newOffsets(latest.stdout).reduce((sum, offset) => sum + offset, 0)).toBe(6)
      })
    })
  })

  describe('whose controller fences a dead node after 3 s', { concurrent: true }, () => {
    const lane = clusterLane(QUICK_CLUSTER_ARGS)
    it.sequential("produce keeps a partition's records in order while it waits out the partition's killed leader", async () => {
      const { server, controllerId, whileKilled } = lane()
      expect((await brook(['topics', 'create', 'ordered', '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      // A partition led by a node other than the controller: the quorum keeps its leader, the partition loses its own.
      const controller = await controllerId()
      const leaders = partitionsOf((await brook(['topics', 'describe', 'ordered', ...server])).stdout)
      const [partition, fields] = [...leaders].find(([, f]) => f.get('Leader') !== String(controller))!
      const victim = Number(fields.get('Leader'))
      // One line a batch (--linger-ms 0), fed while the leader dies: batches of the partition are on their way to it,
      // and more arrive, while the producer sends again through fresh Metadata until a new leader takes over.
      const producer = spawnBrook(['produce', 'ordered', '--partition', String(partition), '--linger-ms', '0', ...server])
      const total = 400
      let written = 0
      const feeding = (async () => {
        for (; written < total; written++) {
          producer.child.stdin!.write(`${written}\n`)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        producer.child.stdin!.end()
      })()
      await until(() => written >= total / 4)
      await whileKilled([victim], async () => {
        await feeding
        expect(await producer.exited).toBe(0)
        expect(producer.stderr()).toMatch(new RegExp(`^produced ${total} records in `))
        const consumed = await brook(['consume', 'ordered', '--partition', String(partition), '--from-beginning', '--timeout-ms', '3000', ...server])
        expect(consumed.code).toBe(0)
        // A batch whose connection died after it was sent may be stored twice (no idempotence), but no record lands
        // before one read in after it: in order of first appearance, every line once, as written.
        expect([...new Set(lines(consumed.stdout))]).toEqual(Array.from({ length: total }, (_, i) => String(i)))
      })
    })

    it.sequential("consume follows every partition while one partition's leader is killed: what is produced meanwhile comes out once a new leader takes over", async () => {
      const { cluster, server, whileKilled } = lane()
      expect((await brook(['topics', 'create', 'followed', '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
      const produceTo = async (partition: number, from: number): Promise<void> => {
        const input = Array.from({ length: 10 }, (_, i) => `${partition}:${from + i}\n`).join('')
        expect(await brook(['produce', 'followed', '--partition', String(partition), ...server], { input })).toMatchObject({ code: 0 })
      }
      for (const partition of [0, 1, 2]) await produceTo(partition, 0)
      const { victim } = await leaderBesideController(lane(), 'followed')
      // Bootstrapped from the victim first, so that the consumer's own Metadata connection dies with it too.
      const viaVictim = ['--bootstrap-server', [victim, ...cluster.nodeIds.filter((id) => id !== victim)].map((id) => cluster.nodes.get(id)!.address).join(',')]
      const consumer = spawnBrook(['consume', 'followed', '--from-beginning', '--max-messages', '60', ...viaVictim])
      await until(() => lines(consumer.stdout()).length >= 30)
      await whileKilled([victim], async () => {
        for (const partition of [0, 1, 2]) await produceTo(partition, 10)
        expect(await consumer.exited).toBe(0)
        expect(consumer.stderr()).toBe('Processed a total of 60 messages\n')
        const read = lines(consumer.stdout())
        for (const partition of [0, 1, 2]) {
          expect(read.filter((line) => line.startsWith(`${partition}:`))).toEqual(Array.from({ length: 20 }, (_, i) => `${partition}:${i}`))
        }
      })
    })

    it.sequential('cluster status lists offline partitions by topic, in ranges, twenty runs at most, and counts the rest', async () => {
      const { cluster, server, whileKilled } = lane()
      // One replica each, spread in turn over the nodes: the first node's are every third partition, none adjacent.
      const assignment = Array.from({ length: 75 }, (_, i) => cluster.nodeIds[i % 3]).join(',')
      expect((await brook(['topics', 'create', 'scattered', '--replica-assignment', assignment, ...server])).code).toBe(0)
      const [victim, ...survivors] = cluster.nodeIds
      await whileKilled([victim!], async () => {
        const survivor = cluster.nodes.get(survivors[0]!)!.address
        await waitFor(`node ${victim} fenced`, async () => !(await cluster.status(survivors[0]!)).liveBrokers.some((broker) => broker.brokerId === victim))
        const status = await brook(['cluster', 'status', '--bootstrap-server', survivor])
        expect(status.code).toBe(0)
        expect(status.stdout).toMatch(/\tOfflinePartitions: 25\n/)
        const shown = Array.from({ length: 20 }, (_, i) => i * 3).join(', ')
        expect(lines(status.stdout)).toContain(`Offline: scattered: ${shown} ... and 5 more (brook topics describe shows each partition's ISR and leader)`)
        // The replicated topics lose the victim from every ISR: whole topics, each a range or a few.
        for (const line of lines(status.stdout).filter((l) => l.startsWith('UnderReplicated: '))) expect(line.length).toBeLessThan(600)
      })
    })
  })

  // A lane of its own: its test waits out a forwarding node's 60 s with no quorum (about 80 s in all), which would
  // hold the other lanes' tests.
  describe('that loses its quorum', { concurrent: true }, () => {
    const lane = clusterLane(QUICK_CLUSTER_ARGS)
    it.sequential('with no quorum left, a controller command fails in one line with REQUEST_TIMED_OUT once the forwarding node\'s 60 s are spent, and cluster status says the quorum has no leader; an idempotent produce says why it has no producer id', { timeout: 180_000 }, async () => {
      const { cluster, server, controllerId, whileKilled } = lane()
      expect((await brook(['topics', 'create', 'quorumless', '--partitions', '1', '--replication-factor', '3', ...server])).code).toBe(0)
      const controller = await controllerId()
      const kept = cluster.nodeIds.find((id) => id !== controller)!
      const survivor = cluster.nodes.get(kept)!.address
      await whileKilled(cluster.nodeIds.filter((id) => id !== kept), async () => {
        // The survivor's producer ids are used up first (the block in use, and the next if it came before the quorum
        // went): a node answers InitProducerId COORDINATOR_LOAD_IN_PROGRESS at once while it has none.
        await withClient(cluster.nodes.get(kept)!, async (client) => {
          for (let asked = 0; ; asked++) {
            const answer = await client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId: null, transactionTimeoutMs: -1, producerId: -1n, producerEpoch: -1 })
            if (answer.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) break
            expect(answer.errorCode).toBe(ErrorCode.NONE)
            expect(asked).toBeLessThan(2 * 1000)
          }
          // A group's coordinator needs __consumer_offsets, which only the controller creates: the answer names the
          // topic once, with why.
          const found = await findGroupCoordinator(client, 'quorumless-group')
          expect(found.errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
          expect(found.errorMessage).toMatch(/^__consumer_offsets could not be created: (?!.*__consumer_offsets)/)
        })
        const [refused, produced] = await Promise.all([
          brook(['topics', 'create', 'orphan', '--replication-factor', '1', '--bootstrap-server', survivor]),
          brook(['produce', 'quorumless', '--bootstrap-server', survivor], { input: 'a record\n' }),
        ])
        // Why depends on whether the survivor still names the dead leader (pre-voting) or knows none (voting), and on
        // whether a connection attempt to that leader was under way when the 60 s ended.
        expectOneLineError(refused, "cannot create topic 'orphan': REQUEST_TIMED_OUT (")
        expect(refused.stderr).toMatch(/\((no active controller was known|the active controller \(node \d\) (could not be reached|did not answer)) within 60 s\b.*\); the outcome is unknown: the controller may still make the change\n$/)
        expectOneLineError(produced, 'cannot get a producer id: COORDINATOR_LOAD_IN_PROGRESS')
        expect(produced.stderr).toMatch(/; gave up after 30 s; a cluster node hands out producer ids only while it reaches the active controller \(a majority of the controller quorum running\), and --acks 1 produces without one\n$/)
        // The survivor says, at WARN, that its heartbeats reach no controller (Kafka's BrokerLifecycleManager warns too).
        expect(cluster.nodes.get(kept)!.output()).toMatch(new RegExp(` WARN \\[node ${kept}\\] (no active controller is known|cannot send a heartbeat to the controller)[^\\n]*; for \\d+ ms now \\(the controller fences a node it has not heard from for broker\\.session\\.timeout\\.ms`))
        const status = await brook(['cluster', 'status', '--bootstrap-server', survivor])
        expectOneLineError(status, 'the controller quorum has no leader (')
      })
    })
  })
})

/**
 * The consumer group's partition assignor (a kafkajs custom PartitionAssigner, protocol name `brook-tasks`).
 * Kafka Streams assigns tasks, not partitions; so does this: a task is (sub-topology, partition), and the member
 * that gets a task gets every topic partition of it — the source partition and the same partition of the
 * sub-topology's changelog, which the runner reads to restore the task's state (kafkajs has no manual `assign`).
 *
 * Sticky and balanced: each member reports the tasks it owns (in its subscription's userData); every member gets
 * floor(T/M) or ceil(T/M) tasks, keeping the ones it owned as far as balance allows, so a rebalance moves (and
 * restores) only the tasks that must move. Ties go by member id and task id, so every leader computes the same.
 */
import kafkajs, { type PartitionAssigner } from 'kafkajs'
import type { Plan } from '../topology/plan.js'

const { AssignerProtocol } = kafkajs

export const ASSIGNOR_NAME = 'brook-tasks'

/** A task's id: `<sub-topology index>_<partition>`, as Kafka Streams writes task ids. */
export const taskId = (sub: number, partition: number): string => `${sub}_${partition}`

/** Balanced, sticky: `owned` maps member id to the task ids it reported. Returns member id to task ids. */
export function assignTasks(tasks: readonly string[], members: readonly string[], owned: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const sortedMembers = [...members].sort()
  const result = new Map(sortedMembers.map((m) => [m, [] as string[]]))
  if (sortedMembers.length === 0) return result
  const base = Math.floor(tasks.length / sortedMembers.length)
  let extra = tasks.length % sortedMembers.length
  // Members that owned more get the ceil(T/M) slots first, so fewer tasks move.
  const byOwned = [...sortedMembers].sort((a, b) => (owned.get(b)?.length ?? 0) - (owned.get(a)?.length ?? 0) || (a < b ? -1 : 1))
  const capacity = new Map<string, number>()
  for (const m of byOwned) capacity.set(m, base + (extra-- > 0 ? 1 : 0))
  const valid = new Set(tasks)
  const taken = new Set<string>()
  for (const m of sortedMembers) {
    for (const task of [...(owned.get(m) ?? [])].sort()) {
      if (!valid.has(task) || taken.has(task) || result.get(m)!.length >= capacity.get(m)!) continue
      result.get(m)!.push(task)
      taken.add(task)
    }
  }
  for (const task of tasks) {
    if (taken.has(task)) continue
    const m = sortedMembers.filter((x) => result.get(x)!.length < capacity.get(x)!)[0] ?? sortedMembers[0]!
    result.get(m)!.push(task)
    taken.add(task)
  }
  return result
}

/** The kafkajs assigner for a plan; `ownedTasks` is read each time this member joins. */
export function taskAssigner(plan: Plan, ownedTasks: () => readonly string[]): PartitionAssigner {
  return ({ cluster }) => ({
    name: ASSIGNOR_NAME,
    version: 1,
    protocol: ({ topics }) => ({
      name: ASSIGNOR_NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.from(JSON.stringify({ owned: ownedTasks() })) }),
    }),
    async assign({ members }) {
      const tasks: string[] = []
      for (const sub of plan.subtopologies) {
        const count = cluster.findTopicPartitionMetadata(sub.sourceTopic).length
        for (let p = 0; p < count; p++) tasks.push(taskId(sub.index, p))
      }
      const owned = new Map<string, string[]>()
      for (const member of members) {
        const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata)
        try {
          owned.set(member.memberId, (JSON.parse(metadata?.userData?.toString() || '{}') as { owned?: string[] }).owned ?? [])
        } catch {
          owned.set(member.memberId, [])
        }
      }
      const assignment = assignTasks(tasks, members.map((m) => m.memberId), owned)
      // A changelog the metadata shows with fewer partitions than its source (partitions added to the source while
      // the application ran) has none for the new tasks: their start stops the pipeline with a TopologyError naming
      // both topics, and kafkajs is not handed a partition that does not exist. Given one, its fetch loop failed with a
      // TypeError of its own (`Cannot read properties of undefined (reading '1')`), which stopped the pipeline first
      // whenever it came before the task's start (`failures.test.ts`).
      const changelogPartitions = new Map<string, number>()
      for (const sub of plan.subtopologies) if (sub.changelogTopic) changelogPartitions.set(sub.changelogTopic, cluster.findTopicPartitionMetadata(sub.changelogTopic).length)
      return [...assignment].map(([memberId, memberTasks]) => {
        const topics: Record<string, number[]> = {}
        for (const id of memberTasks) {
          const [sub, partition] = id.split('_').map(Number) as [number, number]
          const s = plan.subtopologies[sub]!
          ;(topics[s.sourceTopic] ??= []).push(partition)
          const changelogCount = s.changelogTopic ? changelogPartitions.get(s.changelogTopic)! : 0
          // Unknown to the metadata (0): assigned as the source is, as before.
          if (s.changelogTopic && (changelogCount === 0 || partition < changelogCount)) (topics[s.changelogTopic] ??= []).push(partition)
        }
        return { memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: topics, userData: Buffer.alloc(0) }) }
      })
    },
  })
}

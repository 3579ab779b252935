/** `brook groups ...`: what kafka-consumer-groups.sh gives. */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import type { GroupDescription, ResetScope, ResetTarget, TopicSelection } from '../client/group-admin.js'
import { counted } from '../client/wording.js'
import { GROUP_STATES } from '../protocol/constants.js'
import { ErrorCode } from '../protocol/errors.js'
import { clientCommand, withCluster } from './client-command.js'
import { groupStates, offset, timestamp, topicPartitions } from './parsers.js'

/** What Kafka's tool says on stderr before describing a group that is not Stable; a missing group is an error. */
function noteGroupState(group: GroupDescription): void {
  if (group.state === 'Dead') throw new Error(`consumer group '${group.groupId}' does not exist`)
  if (group.state === 'Empty') console.error(`Consumer group '${group.groupId}' has no active members.`)
  if (group.state === 'PreparingRebalance' || group.state === 'CompletingRebalance') console.error(`Warning: Consumer group '${group.groupId}' is rebalancing.`)
}

/** A `--topic` as the user wrote it: `orders` or `orders:0,2`. */
function selectionText({ topic, partitions }: TopicSelection): string {
  return partitions === undefined ? topic : `${topic}:${partitions.join(',')}`
}

/**
 * The `groups` commands. Each action imports the group admin client and the layouts it prints (`await import()`) once
 * its arguments are checked, so that a refused one loads neither.
 */
export function addGroupsCommands(program: CommandUnknownOpts): void {
  const groups = program.command('groups').description('list, describe (offsets and lag), delete consumer groups, and reset or delete their offsets (kafka-consumer-groups.sh)')

  clientCommand(groups, 'list', 'list consumer groups with their protocol type and state')
    .option('--state <states>', `only groups in these states (comma-separated, any case): ${GROUP_STATES.join(', ')}`, groupStates)
    .action(async (options) => {
      const [{ listGroups }, { formatGroupList }] = await Promise.all([import('../client/group-admin.js'), import('./format.js')])
      const listed = await withCluster(options, (cluster) => listGroups(cluster, { states: options.state ?? [] }))
      const table = formatGroupList(listed)
      if (table !== null) console.log(table)
    })

  clientCommand(groups, 'describe <group>', 'committed offset, log end offset, lag and owner of each partition (or --members, --state)')
    .addOption(new Option('--members', 'one line per member: client, host and assigned partitions').conflicts('state'))
    .option('--state', 'the group\'s state, coordinator, assignment strategy and member count')
    .action(async (groupId, options) => {
      const [{ describeGroup, describeGroupOffsets }, { formatGroupOffsets, formatGroupState, formatMembers }] = await Promise.all([import('../client/group-admin.js'), import('./format.js')])
      await withCluster(options, async (cluster) => {
        if (options.state || options.members) {
          const group = await describeGroup(cluster, groupId)
          noteGroupState(group)
          if (options.state) console.log(formatGroupState(group))
          else if (group.members.length > 0) console.log(formatMembers(group))
          return
        }
        const offsets = await describeGroupOffsets(cluster, groupId)
        noteGroupState(offsets.group)
        const table = formatGroupOffsets(offsets)
        if (table !== null) console.log(table)
      })
    })

  clientCommand(groups, 'delete <group>', 'delete a group and its committed offsets (only when it has no active members)').action(async (groupId, options) => {
    const { deleteGroup } = await import('../client/group-admin.js')
    await withCluster(options, (cluster) => deleteGroup(cluster, groupId))
    console.log(`Deleted consumer group ${groupId}.`)
  })

  clientCommand(groups, 'delete-offsets <group>', "delete a group's committed offsets of some topics (kafka-consumer-groups.sh --delete-offsets); not of topics its active members subscribe to")
    .requiredOption('--topic <topic[:partitions]>', 'a topic (all its partitions), or some of its partitions (orders:0,2); repeatable', topicPartitions)
    .action(async (groupId, options) => {
      const [{ deleteGroupOffsets }, { formatOffsetDeletions }] = await Promise.all([import('../client/group-admin.js'), import('./format.js')])
      const deletions = await withCluster(options, (cluster) => deleteGroupOffsets(cluster, groupId, options.topic))
      const failed = deletions.filter((d) => d.errorCode !== ErrorCode.NONE).length
      // Kafka's words, its typo included (ConsumerGroupCommand), with the topics as given.
      if (failed === 0) console.log(`Request succeed for deleting offsets with topic ${options.topic.map(selectionText).join(', ')} group ${groupId}\n`)
      console.log(formatOffsetDeletions(deletions))
      if (failed > 0) throw new Error(`cannot delete offsets of group '${groupId}' for ${counted(failed, 'partition')}; STATUS says why`)
    })

  clientCommand(groups, 'reset-offsets <group>', 'plan new committed offsets for an inactive group, and commit them with --execute')
    .addOption(new Option('--topic <topic[:partitions]>', 'a topic, or some of its partitions (orders:0,2); repeatable').argParser(topicPartitions).conflicts('allTopics'))
    .option('--all-topics', 'every topic the group has committed offsets for')
    .option('--to-earliest', 'the log start offset')
    .option('--to-latest', 'the log end offset')
    .option('--to-offset <n>', 'this offset (moved into [log start, log end] if outside)', offset('--to-offset', { signed: false }))
    .option('--to-datetime <ISO date|ms>', 'the first offset at or after this time, e.g. 2024-05-01T12:00:00Z (local time without a zone)', timestamp('--to-datetime'))
    .option('--shift-by <n>', 'the committed offset plus n (negative moves back)', offset('--shift-by', { signed: true }))
    .addOption(new Option('--dry-run', 'only print the plan (the default)').conflicts('execute'))
    .option('--execute', 'commit the new offsets')
    .action(async (groupId, options) => {
      const targets: ResetTarget[] = [
        ...(options.toEarliest ? [{ to: 'earliest' } as const] : []),
        ...(options.toLatest ? [{ to: 'latest' } as const] : []),
        ...(options.toOffset !== undefined ? [{ to: 'offset', offset: options.toOffset } as const] : []),
        ...(options.toDatetime !== undefined ? [{ to: 'datetime', timestamp: options.toDatetime } as const] : []),
        ...(options.shiftBy !== undefined ? [{ to: 'shift', by: options.shiftBy } as const] : []),
      ]
      if (targets.length !== 1) throw new InvalidArgumentError('give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by')
      let scope: ResetScope
      if (options.allTopics) scope = { allTopics: true }
      else if (options.topic) scope = { allTopics: false, topics: options.topic }
      else throw new InvalidArgumentError('give --topic <topic> (repeatable) or --all-topics')
      const execute = options.execute ?? false
      const [{ resetGroupOffsets }, { formatPlan }] = await Promise.all([import('../client/group-admin.js'), import('./format.js')])
      const plan = await withCluster(options, (cluster) =>
        resetGroupOffsets(cluster, groupId, { scope, target: targets[0]!, execute, onNotice: (message) => console.error(`brook: ${message}`) }),
      )
      console.log(formatPlan(groupId, plan))
      if (!execute) console.error('Dry run: nothing was committed. Add --execute to reset these offsets.')
    })
}

/** `brook topics ...`: what kafka-topics.sh (and for topics kafka-configs.sh, kafka-reassign-partitions.sh, kafka-log-dirs.sh, kafka-leader-election.sh) gives. */
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { counted } from '../client/wording.js'
import type { PartitionAnswer } from '../client/records-admin.js'
import { ElectionType, OffsetSpec } from '../protocol/constants.js'
import { cannotRead } from './files.js'
import { clientCommand, withCluster } from './client-command.js'
import { deleteBefore, electionType, integer, integers, keyValue, offsetTime, partitionIds, repeated, replicaAssignment } from './parsers.js'

/**
 * The `topics` commands. Each action imports the client module it calls and the layouts it prints (`await import()`)
 * once its arguments are checked: a command loads only what it uses, and a refused one none of it.
 */
export function addTopicsCommands(program: CommandUnknownOpts): void {
  const topics = program.command('topics').description('create, list, describe and delete topics, add partitions, move them to other nodes, elect their leaders, and alter their configs (kafka-topics.sh, kafka-reassign-partitions.sh, kafka-leader-election.sh, kafka-configs.sh)')

  clientCommand(topics, 'create <name>', 'create a topic')
    .option('--partitions <n>', 'number of partitions (default: the broker\'s num.partitions)', integer('--partitions', 1, 2147483647))
    .option('--replication-factor <n>', 'copies of each partition, at most one per live node (default: the cluster\'s default.replication.factor)', integer('--replication-factor', 1, 32767))
    .option('--replica-assignment <list>', "each partition's broker ids, the first its preferred leader: 1:2,2:3,3:1 (instead of --partitions and --replication-factor)", replicaAssignment)
    .option('--config <key=value>', 'a topic config, e.g. retention.ms=86400000 (repeatable)', keyValue('--config'))
    .option('--if-not-exists', 'succeed when the topic already exists')
    .action(async (name, options) => {
      if (options.replicaAssignment && (options.partitions !== undefined || options.replicationFactor !== undefined)) {
        throw new InvalidArgumentError('--replica-assignment gives the partitions and their replicas: leave out --partitions and --replication-factor')
      }
      const { createTopic } = await import('../client/admin.js')
      const result = await withCluster(options, (cluster) =>
        createTopic(cluster, {
          name,
          partitions: options.partitions,
          replicationFactor: options.replicationFactor,
          assignments: options.replicaAssignment,
          configs: Object.fromEntries(options.config ?? []),
          ifNotExists: options.ifNotExists ?? false,
        }),
      )
      console.log(result.created ? `Created topic ${name}.` : `Topic ${name} already exists.`)
    })

  clientCommand(topics, 'list', 'list topic names').action(async (options) => {
    const { listTopics } = await import('../client/admin.js')
    const names = await withCluster(options, listTopics)
    for (const name of names) console.log(name)
  })

  clientCommand(topics, 'describe [name]', 'partitions, leaders, replicas, offsets and configs of one topic or all')
    .option('--under-replicated-partitions', 'only partitions whose ISR is smaller than their replicas (their lines only, as kafka-topics.sh)')
    .option('--under-min-isr-partitions', 'only partitions whose ISR is smaller than the topic\'s min.insync.replicas: acks=all is refused there')
    .option('--at-min-isr-partitions', 'only partitions whose ISR is as large as the topic\'s min.insync.replicas: one more replica lost and acks=all is refused')
    .option('--unavailable-partitions', 'only partitions without a live leader')
    .action(async (name, options) => {
      const filters = ([
        [options.underReplicatedPartitions, 'under-replicated'],
        [options.underMinIsrPartitions, 'under-min-isr'],
        [options.atMinIsrPartitions, 'at-min-isr'],
        [options.unavailablePartitions, 'unavailable'],
      ] as const).flatMap(([given, filter]) => (given ? [filter] : []))
      // kafka-topics.sh takes one of them at a time.
      if (filters.length > 1) throw new Error('give at most one of --under-replicated-partitions, --under-min-isr-partitions, --at-min-isr-partitions and --unavailable-partitions')
      const [{ describeTopics }, { formatTopic }] = await Promise.all([import('../client/admin.js'), import('./format.js')])
      const described = await withCluster(options, (cluster) => describeTopics(cluster, name === undefined ? null : [name]))
      for (const topic of described) {
        const shown = formatTopic(topic, filters[0])
        if (shown !== '') console.log(shown)
      }
    })

  clientCommand(topics, 'log-dirs [name]', 'each node\'s log directory and the size in bytes of every partition replica it holds, of one topic or all (kafka-log-dirs.sh --describe)')
    .option('--json', 'print kafka-log-dirs.sh\'s JSON instead of a table')
    .action(async (name, options) => {
      const [{ describeLogDirs, logDirsJson }, { formatLogDirs }] = await Promise.all([import('../client/log-dirs.js'), import('./format.js')])
      const described = await withCluster(options, (cluster) => describeLogDirs(cluster, name ?? null))
      console.log(options.json ? logDirsJson(described) : formatLogDirs(described))
    })

  clientCommand(topics, 'offsets [name]', 'the offset of each partition at a time, of one topic or all: latest by default (kafka-get-offsets.sh); prints topic:partition:offset')
    .option('--partitions <ids>', 'only these partitions (comma-separated)', partitionIds)
    .addOption(new Option('--time <time>', 'latest (-1), earliest (-2), max-timestamp (-3), or the first offset at or after a time in ms or ISO 8601').argParser(offsetTime).default(OffsetSpec.LATEST, 'latest'))
    .option('--exclude-internal-topics', 'leave out __consumer_offsets and __transaction_state when no name is given')
    .action(async (name, options) => {
      const { offsetsAt } = await import('../client/records-admin.js')
      const found = await withCluster(options, (cluster) =>
        offsetsAt(cluster, { topic: name ?? null, partitions: options.partitions ?? null, excludeInternal: options.excludeInternalTopics ?? false }, options.time))
      reportPartitions(found, (p) => `${p.topic}:${p.partition}:${p.value}`, (p) => `Skip getting offsets for topic-partition ${p.topic}-${p.partition} due to error: ${p.error}`)
    })

  clientCommand(topics, 'delete-records [name]', 'delete the records below an offset of some or all partitions (kafka-delete-records.sh); the log start moves up to it')
    .option('--before <offset>', 'delete every record below this offset, or below the high watermark with high-watermark (or -1)', deleteBefore)
    .option('--partitions <ids>', 'only these partitions (comma-separated; default all)', partitionIds)
    .option('--offset-json-file <file>', 'kafka-delete-records.sh\'s file instead of a name and --before: {"partitions": [{"topic": "t", "partition": 0, "offset": 5}], "version": 1}')
    .action(async (name, options) => {
      const wanted = await recordsToDelete(name, options)
      const { deleteRecordsBefore } = await import('../client/records-admin.js')
      const deleted = await withCluster(options, (cluster) => deleteRecordsBefore(cluster, new Map([...wanted].map(([topic, before]) => [topic, before ?? options.before!]))))
      console.log('Executing records delete operation\nRecords delete operation completed:')
      reportPartitions(deleted, (p) => `partition: ${p.topic}-${p.partition}\tlow_watermark: ${p.value}`, (p) => `partition: ${p.topic}-${p.partition}\terror: ${p.error}`, { errorsTo: 'stdout' })
    })

  clientCommand(topics, 'delete <name>', 'delete a topic and its data').action(async (name, options) => {
    const { deleteTopic } = await import('../client/admin.js')
    await withCluster(options, (cluster) => deleteTopic(cluster, name))
    console.log(`Deleted topic ${name}.`)
  })

  clientCommand(topics, 'add-partitions <name>', 'grow a topic to more partitions (kafka-topics.sh --alter --partitions); keys may map to other partitions from then on')
    .requiredOption('--partitions <n>', 'the number of partitions in all, larger than the current one', integer('--partitions', 1, 2147483647))
    .option('--replica-assignment <list>', "every partition's broker ids, the existing ones first, as kafka-topics.sh --alter takes them: 1:2,2:3,3:1,1:3 (the new partitions take those past the current count)", replicaAssignment)
    .action(async (name, options) => {
      const { addPartitions } = await import('../client/admin.js')
      await withCluster(options, (cluster) => addPartitions(cluster, name, options.partitions, options.replicaAssignment))
      console.log(`Topic ${name} now has ${counted(options.partitions, 'partition')}.`)
    })

  clientCommand(topics, 'reassign <name>', 'move partitions to other nodes, or cancel the moves under way (kafka-reassign-partitions.sh --execute, --cancel)')
    .option('--replica-assignment <list>', "the new broker ids of partitions 0, 1, ... in order, the first of each its preferred leader: 2:3,3:1 (partitions past the list keep theirs)", replicaAssignment)
    .option('--cancel', 'cancel every reassignment of the topic under way: the replicas being added go again')
    .option('--wait', 'return only once no reassignment of the topic is under way (kafka-reassign-partitions.sh --verify), printing what still is every 5 s')
    .action(async (name, options) => {
      if ((options.replicaAssignment === undefined) === (options.cancel === undefined)) throw new InvalidArgumentError('give either --replica-assignment <list> or --cancel')
      const [{ listReassignments, reassignPartitions }, { formatReassignments }] = await Promise.all([import('../client/reassignments.js'), import('./format.js')])
      await withCluster(options, async (cluster) => {
        let targets: Map<number, readonly number[] | null>
        if (options.replicaAssignment !== undefined) {
          // Checked first, so that a list longer than the topic moves nothing rather than the partitions before the end.
          const count = (await cluster.metadata([name], { allowAutoTopicCreation: false })).topics.find((t) => t.name === name)?.partitions.length ?? 0
          if (count > 0 && options.replicaAssignment.length > count) {
            throw new InvalidArgumentError(`--replica-assignment lists ${counted(options.replicaAssignment.length, 'partition')}, but topic ${name} has ${count}`)
          }
          targets = new Map(options.replicaAssignment.map((replicas, partition) => [partition, replicas]))
        } else {
          targets = new Map((await listReassignments(cluster, [name])).map((ongoing) => [ongoing.partition, null]))
          if (targets.size === 0) {
            console.log(`No reassignment of topic ${name} is under way.`)
            return
          }
        }
        await reassignPartitions(cluster, name, targets)
        console.log(options.cancel ? `Cancelled the reassignment of ${counted(targets.size, 'partition')} of topic ${name}.` : `Started the reassignment of ${counted(targets.size, 'partition')} of topic ${name}.`)
        if (!options.wait) return
        let lastShown = Date.now()
        for (;;) {
          const ongoing = await listReassignments(cluster, [name])
          if (ongoing.length === 0) break
          if (Date.now() - lastShown >= 5000) {
            console.log(formatReassignments(ongoing))
            lastShown = Date.now()
          }
          await sleep(500)
        }
        // kafka-reassign-partitions.sh --verify's lines, once every move is done.
        if (options.cancel) console.log(`No reassignment of topic ${name} is under way.`)
        else for (const partition of targets.keys()) console.log(`Reassignment of partition ${name}-${partition} is completed.`)
      })
    })

  clientCommand(topics, 'reassignments [name]', 'the partition reassignments under way, of one topic or all (kafka-reassign-partitions.sh --list)').action(async (name, options) => {
    const [{ listReassignments }, { formatReassignments }] = await Promise.all([import('../client/reassignments.js'), import('./format.js')])
    const ongoing = await withCluster(options, (cluster) => listReassignments(cluster, name === undefined ? null : [name]))
    console.log(formatReassignments(ongoing) ?? 'No partition reassignment is under way.')
  })

  clientCommand(topics, 'elect-leaders [name]', "elect partition leaders at the controller (kafka-leader-election.sh): each partition's preferred (first) replica where it is live and in the ISR, or with --type unclean a leader for partitions that have none; without a name, every partition of every topic")
    .option('--partition <n>', 'a partition of the topic (repeatable; default: all its partitions)', integers('--partition', 0, 2147483647))
    .addOption(
      new Option('--type <type>', 'preferred or unclean (kafka-leader-election.sh --election-type); unclean may elect a replica that lacks acknowledged records')
        .argParser(electionType)
        .default(ElectionType.PREFERRED, 'preferred'),
    )
    .action(async (name, options) => {
      if (name === undefined && options.partition !== undefined) throw new InvalidArgumentError('--partition needs a topic name')
      const topics = name === undefined ? null : [{ topic: name, partitions: options.partition }]
      const [{ electLeaders, failedElections }, { formatElection }] = await Promise.all([import('../client/leader-election.js'), import('./format.js')])
      const outcomes = await withCluster(options, (cluster) => electLeaders(cluster, { electionType: options.type, topics }))
      console.log(formatElection(options.type, outcomes))
      const failed = failedElections(outcomes).length
      // Kafka's words (LeaderElectionCommand: "%s replica(s) could not be elected"), the count agreeing with its noun.
      if (failed > 0) throw new Error(`${counted(failed, 'replica')} could not be elected`)
    })

  clientCommand(topics, 'alter-config <name>', 'set or remove topic configs (kafka-configs.sh --alter); unlisted configs keep their values')
    .option('--set <key=value>', 'set a config, e.g. retention.ms=86400000 (repeatable)', keyValue('--set'))
    .option('--delete <key>', 'remove a config so that its default applies again (repeatable)', repeated)
    .action(async (name, options) => {
      if (!options.set && !options.delete) throw new InvalidArgumentError('give at least one --set key=value or --delete key')
      const names = [...(options.set ?? []).map(([key]) => key), ...(options.delete ?? [])]
      const twice = names.find((key, i) => names.indexOf(key) !== i)
      if (twice !== undefined) throw new InvalidArgumentError(`config '${twice}' is named more than once`)
      // Kafka's controller takes the removal of a name that is no topic config as no change. kafka-configs.sh refuses,
      // before it sends anything, the removal of any config the topic does not set ("Invalid config(s): ..."); this
      // command refuses at least a name that is no topic config, so that a typo is not a silent no-op.
      const { topicConfigDef } = await import('../broker/topic-configs.js')
      const unknown = (options.delete ?? []).find((key) => topicConfigDef(key) === undefined)
      if (unknown !== undefined) throw new InvalidArgumentError(`unknown topic config '${unknown}'`)
      const { alterTopicConfigs } = await import('../client/admin.js')
      await withCluster(options, (cluster) => alterTopicConfigs(cluster, name, { set: options.set ?? [], delete: options.delete ?? [] }))
      console.log(`Completed updating config for topic ${name}.`)
    })
}

/**
 * Prints each partition's answer on stdout, or its error (on stderr, or with the answers with `errorsTo: 'stdout'`, as
 * kafka-delete-records.sh prints them); any error makes the command exit 1 once all are printed.
 */
function reportPartitions(
  answers: readonly PartitionAnswer[],
  line: (answer: PartitionAnswer & { value: bigint }) => string,
  failure: (answer: PartitionAnswer & { error: string }) => string,
  options: { errorsTo?: 'stdout' | 'stderr' } = {},
): void {
  for (const answer of answers) {
    if ('value' in answer) console.log(line(answer))
    else if (options.errorsTo === 'stdout') console.log(failure(answer))
    else console.error(failure(answer))
  }
  if (answers.some((answer) => 'error' in answer)) process.exitCode = 1
}

/**
 * What `topics delete-records` deletes, by topic: the offset below which to delete, by partition, or null for
 * `--before` at every partition of the topic. Either a name and --before, or --offset-json-file (Kafka's format,
 * version 1, no partition twice); anything else is an InvalidArgumentError in one line.
 */
async function recordsToDelete(
  name: string | undefined,
  options: { before?: bigint; partitions?: number[]; offsetJsonFile?: string },
): Promise<Map<string, Map<number, bigint> | null>> {
  if (options.offsetJsonFile === undefined) {
    if (name === undefined || options.before === undefined) throw new InvalidArgumentError('give a topic and --before, or --offset-json-file')
    return new Map([[name, options.partitions ? new Map(options.partitions.map((p) => [p, options.before!])) : null]])
  }
  if (name !== undefined || options.before !== undefined || options.partitions !== undefined) {
    throw new InvalidArgumentError('--offset-json-file names the partitions and offsets itself: give no topic, --before or --partitions beside it')
  }
  const file = options.offsetJsonFile
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw cannotRead(file, error)
  }
  const bad = (why: string) => new InvalidArgumentError(`--offset-json-file ${file}: ${why}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw bad('not valid JSON')
  }
  const { version = 1, partitions } = (parsed ?? {}) as { version?: unknown; partitions?: unknown }
  if (version !== 1) throw bad(`version ${JSON.stringify(version)} is not supported (1 is)`)
  if (!Array.isArray(partitions)) throw bad('no "partitions" array')
  const wanted = new Map<string, Map<number, bigint>>()
  for (const entry of partitions as { topic?: unknown; partition?: unknown; offset?: unknown }[]) {
    const { topic, partition, offset } = entry ?? {}
    if (typeof topic !== 'string' || !Number.isInteger(partition) || (partition as number) < 0 || !Number.isSafeInteger(offset) || (offset as number) < -1) {
      throw bad(`each partition needs "topic" (a name), "partition" (a partition id) and "offset" (an offset, or -1 for the high watermark), not ${JSON.stringify(entry)}`)
    }
    const offsets = wanted.get(topic) ?? new Map<number, bigint>()
    if (offsets.has(partition as number)) throw bad(`${topic}-${partition as number} appears twice`)
    wanted.set(topic, offsets.set(partition as number, BigInt(offset as number)))
  }
  if (wanted.size === 0) throw bad('it names no partition')
  return wanted
}

/** `brook topics ...`: what kafka-topics.sh (and kafka-configs.sh for topics) gives. */
import { setTimeout as sleep } from 'node:timers/promises'
import { InvalidArgumentError, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { addPartitions, alterTopicConfigs, createTopic, deleteTopic, describeTopics, listTopics } from '../client/admin.js'
import { counted } from '../client/wording.js'
import { listReassignments, reassignPartitions } from '../client/reassignments.js'
import { describeLogDirs, logDirsJson } from '../client/log-dirs.js'
import { clientCommand, withCluster } from './client-command.js'
import { formatLogDirs, formatReassignments, formatTopic } from './format.js'
import { integer, keyValue, repeated, replicaAssignment } from './parsers.js'

export function addTopicsCommands(program: CommandUnknownOpts): void {
  const topics = program.command('topics').description('create, list, describe and delete topics, add partitions, move them to other nodes, and alter their configs (kafka-topics.sh, kafka-reassign-partitions.sh, kafka-configs.sh)')

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
    const names = await withCluster(options, listTopics)
    for (const name of names) console.log(name)
  })

  clientCommand(topics, 'describe [name]', 'partitions, leaders, replicas, offsets and configs of one topic or all').action(async (name, options) => {
    const described = await withCluster(options, (cluster) => describeTopics(cluster, name === undefined ? null : [name]))
    for (const topic of described) console.log(formatTopic(topic))
  })

  clientCommand(topics, 'log-dirs [name]', 'each node\'s log directory and the size in bytes of every partition replica it holds, of one topic or all (kafka-log-dirs.sh --describe)')
    .option('--json', 'print kafka-log-dirs.sh\'s JSON instead of a table')
    .action(async (name, options) => {
      const described = await withCluster(options, (cluster) => describeLogDirs(cluster, name ?? null))
      console.log(options.json ? logDirsJson(described) : formatLogDirs(described))
    })

  clientCommand(topics, 'delete <name>', 'delete a topic and its data').action(async (name, options) => {
    await withCluster(options, (cluster) => deleteTopic(cluster, name))
    console.log(`Deleted topic ${name}.`)
  })

  clientCommand(topics, 'add-partitions <name>', 'grow a topic to more partitions (kafka-topics.sh --alter --partitions); keys may map to other partitions from then on')
    .requiredOption('--partitions <n>', 'the number of partitions in all, larger than the current one', integer('--partitions', 1, 2147483647))
    .option('--replica-assignment <list>', "every partition's broker ids, the existing ones first, as kafka-topics.sh --alter takes them: 1:2,2:3,3:1,1:3 (the new partitions take those past the current count)", replicaAssignment)
    .action(async (name, options) => {
      await withCluster(options, (cluster) => addPartitions(cluster, name, options.partitions, options.replicaAssignment))
      console.log(`Topic ${name} now has ${counted(options.partitions, 'partition')}.`)
    })

  clientCommand(topics, 'reassign <name>', 'move partitions to other nodes, or cancel the moves under way (kafka-reassign-partitions.sh --execute, --cancel)')
    .option('--replica-assignment <list>', "the new broker ids of partitions 0, 1, ... in order, the first of each its preferred leader: 2:3,3:1 (partitions past the list keep theirs)", replicaAssignment)
    .option('--cancel', 'cancel every reassignment of the topic under way: the replicas being added go again')
    .option('--wait', 'return only once no reassignment of the topic is under way (kafka-reassign-partitions.sh --verify), printing what still is every 5 s')
    .action(async (name, options) => {
      if ((options.replicaAssignment === undefined) === (options.cancel === undefined)) throw new InvalidArgumentError('give either --replica-assignment <list> or --cancel')
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
        console.log(`No reassignment of topic ${name} is under way.`)
      })
    })

  clientCommand(topics, 'reassignments [name]', 'the partition reassignments under way, of one topic or all (kafka-reassign-partitions.sh --list)').action(async (name, options) => {
    const ongoing = await withCluster(options, (cluster) => listReassignments(cluster, name === undefined ? null : [name]))
    console.log(formatReassignments(ongoing) ?? 'No partition reassignment is under way.')
  })

  clientCommand(topics, 'alter-config <name>', 'set or remove topic configs (kafka-configs.sh --alter); unlisted configs keep their values')
    .option('--set <key=value>', 'set a config, e.g. retention.ms=86400000 (repeatable)', keyValue('--set'))
    .option('--delete <key>', 'remove a config so that its default applies again (repeatable)', repeated)
    .action(async (name, options) => {
      if (!options.set && !options.delete) throw new InvalidArgumentError('give at least one --set key=value or --delete key')
      const names = [...(options.set ?? []).map(([key]) => key), ...(options.delete ?? [])]
      const twice = names.find((key, i) => names.indexOf(key) !== i)
      if (twice !== undefined) throw new InvalidArgumentError(`config '${twice}' is named more than once`)
      await withCluster(options, (cluster) => alterTopicConfigs(cluster, name, { set: options.set ?? [], delete: options.delete ?? [] }))
      console.log(`Completed updating config for topic ${name}.`)
    })
}

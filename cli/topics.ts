/** `brook topics ...`: what kafka-topics.sh (and kafka-configs.sh for topics) gives. */
import { InvalidArgumentError, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { addPartitions, alterTopicConfigs, createTopic, deleteTopic, describeTopics, listTopics } from '../client/admin.js'
import { counted } from '../client/wording.js'
import { clientCommand, withCluster } from './client-command.js'
import { formatTopic } from './format.js'
import { integer, keyValue, repeated, replicaAssignment } from './parsers.js'

export function addTopicsCommands(program: CommandUnknownOpts): void {
  const topics = program.command('topics').description('create, list, describe and delete topics, add partitions, and alter their configs (kafka-topics.sh, kafka-configs.sh)')

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

/**
 * `brook cluster ...`: what kafka-storage.sh random-uuid, kafka-metadata-quorum.sh and kafka-cluster.sh unregister give
 * for a replicated cluster, a node's log level as kafka-configs.sh --entity-type broker-loggers reads and sets it, and
 * the dynamic broker configs as kafka-configs.sh --entity-type brokers does.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { newClusterId } from '../broker/cluster/voters.js'
import { clientCommand, withCluster } from './client-command.js'
import { integer, keyValue, repeated } from './parsers.js'

/** The `cluster` commands; the client commands import the client and the layout they use in their actions, so `new-id` loads neither. */
export function addClusterCommands(program: CommandUnknownOpts): void {
  const cluster = program.command('cluster').description('make a cluster id, show a replicated cluster\'s quorum and nodes, unregister a node that is gone, show or set a node\'s log level, and show or change the broker configs that can change while nodes run')

  cluster
    .command('new-id')
    .description('print a new cluster id for `brook start --cluster-id` (kafka-storage.sh random-uuid)')
    .action(() => {
      console.log(newClusterId())
    })

  clientCommand(cluster, 'status', 'the controller quorum (leader, epoch, high watermark, each node\'s metadata log end offset and lag), the active controller, which nodes are live brokers (kafka-metadata-quorum.sh describe), and the under-replicated and offline partitions').action(
    async (options) => {
      const [{ clusterStatus }, { formatClusterStatus }] = await Promise.all([import('../client/cluster-admin.js'), import('./format.js')])
      console.log(formatClusterStatus(await withCluster(options, clusterStatus)))
    },
  )

  clientCommand(cluster, 'unregister', 'remove a broker\'s registration, of a node that is gone for good (kafka-cluster.sh unregister): it leaves every ISR and its leaderships move; its partitions keep it as a replica')
    .requiredOption('--id <n>', 'the broker id to unregister', integer('--id', 0, 2147483647))
    .action(async (options) => {
      const { unregisterBroker } = await import('../client/cluster-admin.js')
      await withCluster(options, (client) => unregisterBroker(client, options.id))
      console.log(`Broker ${options.id} is no longer registered.`)
    })

  clientCommand(cluster, 'log-level', 'show the level a node logs at, or set it while the node runs (kafka-configs.sh --entity-type broker-loggers, the root logger); a level set lasts until the node restarts')
    .requiredOption('--id <n>', 'the node id', integer('--id', 0, 2147483647))
    .addOption(new Option('--set <level>', 'the level to log at from now on').choices(['error', 'warn', 'info', 'debug'] as const))
    .action(async (options) => {
      const level = options.set
      const { brokerLogLevel, setBrokerLogLevel } = await import('../client/cluster-admin.js')
      if (level === undefined) {
        console.log(`Node ${options.id} logs at ${await withCluster(options, (client) => brokerLogLevel(client, options.id))}.`)
        return
      }
      await withCluster(options, (client) => setBrokerLogLevel(client, options.id, level.toUpperCase()))
      console.log(`Node ${options.id} now logs at ${level.toUpperCase()}, until it restarts.`)
    })

  clientCommand(cluster, 'configs', 'show or change the dynamic broker configs, the broker defaults of topic configs (message.max.bytes, log.retention.ms...), for every node or, with --id, for one node, which wins (kafka-configs.sh --entity-type brokers --entity-default or --entity-name); they last across restarts')
    .option('--id <n>', 'the node whose own configs to show or change (default: those of every node)', integer('--id', 0, 2147483647))
    .option('--set <key=value>', 'set a config, e.g. log.retention.ms=86400000 (repeatable)', keyValue('--set'))
    .option('--delete <key>', 'remove a config so that the level below applies again (repeatable)', repeated)
    .action(async (options) => {
      const nodeId = options.id ?? null
      const whose = nodeId === null ? 'every node' : `node ${nodeId}`
      const [{ alterDynamicBrokerConfigs, dynamicBrokerConfigs }, { dynamicBrokerConfigDef }] = await Promise.all([import('../client/cluster-admin.js'), import('../broker/topic-configs.js')])
      if (options.set === undefined && options.delete === undefined) {
        const configs = await withCluster(options, (client) => dynamicBrokerConfigs(client, nodeId))
        console.log(nodeId === null ? 'Default configs for brokers in the cluster are:' : `Dynamic configs for broker ${nodeId} are:`)
        for (const config of configs) console.log(`  ${config.name}=${config.value}${nodeId === null ? '' : ` (${config.source})`}`)
        if (configs.length === 0) console.log(`  none: ${whose} uses its flags and config file`)
        return
      }
      const names = [...(options.set ?? []).map(([key]) => key), ...(options.delete ?? [])]
      const twice = names.find((key, i) => names.indexOf(key) !== i)
      if (twice !== undefined) throw new InvalidArgumentError(`config '${twice}' is named more than once`)
      // A node takes the removal of a name it does not know as no change: a typo here would be a silent no-op.
      const unknown = (options.delete ?? []).find((key) => dynamicBrokerConfigDef(key) === undefined)
      if (unknown !== undefined) throw new InvalidArgumentError(`'${unknown}' is no broker config that can change while nodes run`)
      await withCluster(options, (client) => alterDynamicBrokerConfigs(client, nodeId, { set: options.set ?? [], delete: options.delete ?? [] }))
      console.log(nodeId === null ? 'Completed updating default config for brokers in the cluster.' : `Completed updating config for broker ${nodeId}.`)
    })
}

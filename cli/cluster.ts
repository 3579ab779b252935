/**
 * `brook cluster ...`: what kafka-storage.sh random-uuid, kafka-metadata-quorum.sh and kafka-cluster.sh unregister give
 * for a replicated cluster, and a node's log level as kafka-configs.sh --entity-type broker-loggers reads and sets it.
 */
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { newClusterId } from '../broker/cluster/voters.js'
import { brokerLogLevel, clusterStatus, setBrokerLogLevel, unregisterBroker } from '../client/cluster-admin.js'
import { clientCommand, withCluster } from './client-command.js'
import { formatClusterStatus } from './format.js'
import { integer } from './parsers.js'

export function addClusterCommands(program: CommandUnknownOpts): void {
  const cluster = program.command('cluster').description('make a cluster id, show a replicated cluster\'s quorum and nodes, unregister a node that is gone, and show or set a node\'s log level')

  cluster
    .command('new-id')
    .description('print a new cluster id for `brook start --cluster-id` (kafka-storage.sh random-uuid)')
    .action(() => {
      console.log(newClusterId())
    })

  clientCommand(cluster, 'status', 'the controller quorum (leader, epoch, high watermark, each node\'s metadata log end offset and lag), the active controller, which nodes are live brokers (kafka-metadata-quorum.sh describe), and the under-replicated and offline partitions').action(
    async (options) => {
      console.log(formatClusterStatus(await withCluster(options, clusterStatus)))
    },
  )

  clientCommand(cluster, 'unregister', 'remove a broker\'s registration, of a node that is gone for good (kafka-cluster.sh unregister): it leaves every ISR and its leaderships move; its partitions keep it as a replica')
    .requiredOption('--id <n>', 'the broker id to unregister', integer('--id', 0, 2147483647))
    .action(async (options) => {
      await withCluster(options, (client) => unregisterBroker(client, options.id))
      console.log(`Broker ${options.id} is no longer registered.`)
    })

  clientCommand(cluster, 'log-level', 'show the level a node logs at, or set it while the node runs (kafka-configs.sh --entity-type broker-loggers, the root logger); a level set lasts until the node restarts')
    .requiredOption('--id <n>', 'the node id', integer('--id', 0, 2147483647))
    .addOption(new Option('--set <level>', 'the level to log at from now on').choices(['error', 'warn', 'info', 'debug'] as const))
    .action(async (options) => {
      const level = options.set
      if (level === undefined) {
        console.log(`Node ${options.id} logs at ${await withCluster(options, (client) => brokerLogLevel(client, options.id))}.`)
        return
      }
      await withCluster(options, (client) => setBrokerLogLevel(client, options.id, level.toUpperCase()))
      console.log(`Node ${options.id} now logs at ${level.toUpperCase()}, until it restarts.`)
    })
}

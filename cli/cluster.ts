/**
 * `brook cluster ...`: what kafka-storage.sh random-uuid, kafka-metadata-quorum.sh and kafka-cluster.sh unregister give
 * for a replicated cluster.
 */
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { newClusterId } from '../broker/cluster/voters.js'
import { clusterStatus, unregisterBroker } from '../client/cluster-admin.js'
import { clientCommand, withCluster } from './client-command.js'
import { formatClusterStatus } from './format.js'
import { integer } from './parsers.js'

export function addClusterCommands(program: CommandUnknownOpts): void {
  const cluster = program.command('cluster').description('make a cluster id, show a replicated cluster\'s quorum and nodes, and unregister a node that is gone')

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
}

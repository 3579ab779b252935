/** `brook cluster ...`: what kafka-storage.sh random-uuid and kafka-metadata-quorum.sh give for a replicated cluster. */
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { newClusterId } from '../broker/cluster/voters.js'
import { clusterStatus } from '../client/cluster-admin.js'
import { clientCommand, withCluster } from './client-command.js'
import { formatClusterStatus } from './format.js'

export function addClusterCommands(program: CommandUnknownOpts): void {
  const cluster = program.command('cluster').description('make a cluster id, and show a replicated cluster\'s quorum and nodes')

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
}

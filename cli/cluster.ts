/** `brook cluster ...`: what kafka-storage.sh random-uuid and kafka-metadata-quorum.sh give for a replicated cluster. */
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { newClusterId } from '../broker/cluster/voters.js'

export function addClusterCommands(program: CommandUnknownOpts): void {
  const cluster = program.command('cluster').description('make a cluster id, and show a replicated cluster\'s quorum and nodes')

  cluster
    .command('new-id')
    .description('print a new cluster id for `brook start --cluster-id` (kafka-storage.sh random-uuid)')
    .action(() => {
      console.log(newClusterId())
    })
}

/**
 * What every command that talks to a cluster shares: the --bootstrap-server option (or BROOK_BOOTSTRAP_SERVER), and
 * a connection that is always closed when the command is done, so that the process can exit.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import type { ClusterClient } from '../client/cluster-client.js'
import { parseBootstrapServers, type BrokerAddress } from '../client/address.js'

const DEFAULT_BOOTSTRAP_SERVER = 'localhost:9092'

/** A subcommand of `parent` that takes --bootstrap-server; its arguments and options are typed from `nameAndArgs` on. */
export function clientCommand<Usage extends string>(parent: CommandUnknownOpts, nameAndArgs: Usage, description: string) {
  return parent
    .command(nameAndArgs)
    .description(description)
    .addOption(
      new Option('--bootstrap-server <host:port>', 'broker(s) to connect to, comma-separated')
        .env('BROOK_BOOTSTRAP_SERVER')
        .default(DEFAULT_BOOTSTRAP_SERVER)
        .argParser(checkedBootstrapServers),
    )
}

/**
 * Checks a --bootstrap-server list as commander parses it, so that a bad one is refused before anything runs, in
 * commander's words for where it came from: the flag, or BROOK_BOOTSTRAP_SERVER (a user who gave no flag is told of
 * the variable, not of a flag they never typed).
 */
function checkedBootstrapServers(value: string): string {
  try {
    parseBootstrapServers(value)
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message)
  }
  return value
}

/** The --bootstrap-server list (checked as it was parsed). */
export function bootstrapServers(options: { bootstrapServer: string }): BrokerAddress[] {
  return parseBootstrapServers(options.bootstrapServer)
}

/** Connects, runs `use`, and always closes the connections, so the process can exit. */
export async function withCluster<T>(options: { bootstrapServer: string }, use: (cluster: ClusterClient) => Promise<T>): Promise<T> {
  // Loaded here, not above: a command refused before it connects (`brook process` and `brook simulate`, which connect
  // through kafkajs, among them) loads none of Brook's client.
  const { ClusterClient } = await import('../client/cluster-client.js')
  const cluster = await ClusterClient.connect(bootstrapServers(options), { onWaiting: (message) => process.stderr.write(`brook: ${message}\n`) })
  try {
    return await use(cluster)
  } finally {
    cluster.close()
  }
}

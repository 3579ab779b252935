#!/usr/bin/env node
/**
 * `brook`: the one composition root, a commander program whose commands call into broker/ (and later processor/).
 */
import { Command, InvalidArgumentError } from 'commander'
import { readFileSync } from 'node:fs'
import { Broker } from './broker/broker.js'
import { DEFAULT_CONFIG, type BrokerConfig } from './broker/config.js'

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`)
    const n = Number(value)
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`)
    return n
  }
}

const program = new Command()
program
  .name('brook')
  .description('A Kafka you can npm install: a Kafka-wire-compatible broker, admin tools and a stream processor')
  .version('0.1.0')
  .showHelpAfterError()

program
  .command('start')
  .description('run one broker node in the foreground')
  .option('--config <file>', 'JSON file with any of the options below (flags win)')
  .option('--node-id <n>', `node id (default ${DEFAULT_CONFIG.nodeId})`, integer('--node-id', 0, 2147483647))
  .option('--host <host>', `interface to listen on (default ${DEFAULT_CONFIG.host})`)
  .option('--port <port>', `port to listen on (default ${DEFAULT_CONFIG.port})`, integer('--port', 0, 65535))
  .option('--advertised-host <host>', 'host clients are told to connect to (default: --host)')
  .option('--data-dir <dir>', `data directory (default ${DEFAULT_CONFIG.dataDir})`)
  .option('--fsync', 'sync every write to disk before acknowledging it')
  .option('--no-auto-create-topics', 'do not create unknown topics on Metadata requests')
  .option('--default-partitions <n>', `partitions of auto-created topics (default ${DEFAULT_CONFIG.defaultPartitions})`, integer('--default-partitions', 1, 10000))
  .option('--log-level <level>', 'error, warn, info or debug (default info)')
  .action(async (options: Record<string, unknown>) => {
    const fromFile = options.config ? (JSON.parse(readFileSync(String(options.config), 'utf8')) as Partial<BrokerConfig>) : {}
    const flags: Partial<BrokerConfig> = {}
    for (const key of ['nodeId', 'host', 'port', 'advertisedHost', 'dataDir', 'fsync', 'defaultPartitions', 'logLevel'] as const) {
      if (options[key] !== undefined) (flags as Record<string, unknown>)[key] = options[key]
    }
    if (options.autoCreateTopics === false) flags.autoCreateTopics = false
    const config = { ...fromFile, ...flags }
    if (config.dataDir === undefined && config.nodeId !== undefined) config.dataDir = `.brook/node-${config.nodeId}`
    const broker = await Broker.start(config)
    const shutdown = (): void => {
      void broker.stop().then(() => process.exit(0))
    }
    process.once('SIGINT', shutdown)
    process.once('SIGTERM', shutdown)
  })

program.parseAsync().catch((error: Error) => {
  console.error(`brook: ${error.message}`)
  process.exitCode = 1
})

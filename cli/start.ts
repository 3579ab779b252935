/**
 * `brook start`: one broker node in the foreground, configured by flags, a `--config` JSON file, or both (flags win).
 * The numeric settings come from one table (start-options.ts) that checks flags and the file alike; SIGINT, SIGTERM and SIGHUP
 * stop the node cleanly, and so does the end of the program that started it, when it gave the node an IPC channel.
 */
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { DEFAULT_CONFIG, type BrokerConfig } from '../broker/config.js'
import { LOG_LEVELS, NUMERIC_SETTINGS, checkCombined, readConfigFile, type NumericSetting } from './start-options.js'
import { integer } from './parsers.js'
import { unbracketed } from '../client/address.js'
import { ignoreOutputErrors, onParentEnd, STOP_WITH_CLUSTER, tellParent } from './interrupt.js'
import type { Broker } from '../broker/broker.js'
import { removeIfTemporary } from './testing.js'

/** How the node stops: Broker.stop's options. */
type StopOptions = NonNullable<Parameters<Broker['stop']>[0]>

/** A numeric broker setting as a `brook start` flag; its default is shown in --help but not set, so --config can. */
function settingOption(setting: NumericSetting) {
  const name = setting.kafkaName ? `${setting.kafkaName}: ` : ''
  const value = DEFAULT_CONFIG[setting.key]
  // Kafka's Long.MAX_VALUE defaults (no limit) are Number.MAX_SAFE_INTEGER here, a number no one would recognise.
  const shown = value === Number.MAX_SAFE_INTEGER ? 'no limit' : value
  return new Option(`${setting.flag} <${setting.unit}>`, `${name}${setting.description} (default: ${shown})`).argParser(
    integer(setting.flag, setting.min, setting.max),
  )
}

/** Node id and port come first in --help, where a reader looks for them; the group, offsets and log settings last. */
function addressed(setting: NumericSetting): boolean {
  return setting.key === 'nodeId' || setting.key === 'port'
}

export function addStartCommand(program: CommandUnknownOpts): void {
  const settingOptions = NUMERIC_SETTINGS.map((setting) => ({ setting, option: settingOption(setting) }))
  const command = program
    .command('start')
    .description('run one broker node in the foreground')
    .option('--config <file>', 'JSON file with any of these settings under their camelCase names (nodeId, groupInitialRebalanceDelayMs...) or the Kafka names shown, and the broker defaults of topic configs under their Kafka names (log.cleanup.policy, log.message.timestamp.type, compression.type, min.insync.replicas...); flags win')
  for (const { option } of settingOptions.filter(({ setting }) => addressed(setting))) command.addOption(option)
  const start = command
    .option('--host <host>', `interface to listen on (default: ${DEFAULT_CONFIG.host})`)
    .option('--advertised-host <host>', 'host clients are told to connect to (default: --host)')
    .addOption(new Option('--advertised-port <port>', 'port clients are told to connect to, where a port forward (docker -p, ssh -L, kubectl port-forward) takes them to --port (default: --port)').argParser(integer('--advertised-port', 1, 65535)))
    .option('--data-dir <dir>', 'data directory (default: .brook/node-<node id>)')
    .option('--controller-quorum-voters <voters>', 'controller.quorum.voters: join a replicated cluster whose controller quorum is these voters, id@host:port,... (each voter\'s controller listener; this node\'s own entry is where it listens for the quorum)')
    .option('--cluster-id <id>', 'the cluster\'s id, required on a new data directory with --controller-quorum-voters (`brook cluster new-id` makes one)')
    .option('--fsync', 'sync every write to disk before acknowledging it')
    .option('--no-auto-create-topics', 'auto.create.topics.enable=false: do not create unknown topics on Metadata requests')
    .option('--no-auto-leader-rebalance', 'with --controller-quorum-voters: auto.leader.rebalance.enable=false: leave leadership where failures moved it instead of returning it to each partition\'s preferred replica')
    .option('--no-record-validation', 'log.record.validation.enable=false: check only the header and CRC of produced batches, not their records')
    .addOption(new Option('--log-level <level>', `log level (default: ${DEFAULT_CONFIG.logLevel})`).choices(LOG_LEVELS))
  for (const { option } of settingOptions.filter(({ setting }) => !addressed(setting))) start.addOption(option)
  start.action(async (options) => {
    const fromFile = options.config === undefined ? {} : readConfigFile(options.config)
    const flags: Partial<BrokerConfig> = {}
    if (options.host !== undefined) flags.host = options.host
    if (options.advertisedHost !== undefined) flags.advertisedHost = options.advertisedHost
    if (options.advertisedPort !== undefined) flags.advertisedPort = options.advertisedPort
    if (options.dataDir !== undefined) flags.dataDir = options.dataDir
    if (options.controllerQuorumVoters !== undefined) flags.controllerQuorumVoters = options.controllerQuorumVoters
    if (options.clusterId !== undefined) flags.clusterId = options.clusterId
    if (options.fsync !== undefined) flags.fsync = options.fsync
    if (options.logLevel !== undefined) flags.logLevel = options.logLevel
    if (!options.autoCreateTopics) flags.autoCreateTopics = false
    if (!options.recordValidation) flags.recordValidation = false
    if (!options.autoLeaderRebalance) flags.autoLeaderRebalance = false
    // The table's options are added in a loop, so their values are read by name; the parser made them numbers.
    for (const { setting, option } of settingOptions) {
      const value = start.getOptionValue(option.attributeName())
      if (typeof value === 'number') flags[setting.key] = value
    }
    const config: Partial<BrokerConfig> = { ...fromFile, ...flags }
    // Kafka's listener URIs write an IPv6 host in brackets (PLAINTEXT://[::1]:9092) and Utils.getHost strips them: the
    // node listens on ::1 and tells clients ::1, which they put in brackets themselves where they need to.
    if (config.host !== undefined) config.host = unbracketed(config.host)
    if (config.advertisedHost !== undefined) config.advertisedHost = unbracketed(config.advertisedHost)
    checkCombined(config)
    if (config.dataDir === undefined && config.nodeId !== undefined) config.dataDir = `.brook/node-${config.nodeId}`
    // Loaded here so that the client commands do not pay for the broker's storage modules at startup.
    const { Broker } = await import('../broker/broker.js')
    // The signals are heard before the node starts: one that arrives while it opens its data, or right after it
    // prints that it listens, stops it cleanly once it has started instead of killing it half-way.
    let stopRequested: StopOptions | null = null
    let stop = (options: StopOptions = {}): void => void (stopRequested = options)
    process.once('SIGINT', () => stop())
    process.once('SIGTERM', () => stop())
    // Output that fails (a closed terminal, a reader of its stderr gone) is dropped: a node serves on whoever reads
    // its log, as Kafka's log4j appenders never stop a broker that cannot write a line.
    ignoreOutputErrors()
    // Its terminal closed: a clean stop, as a Kafka broker's shutdown hook makes on SIGHUP.
    process.once('SIGHUP', () => stop())
    // Started by a Node program with an IPC channel (`brook demo`, `brook dev`, brook/testing's startBrook): when
    // that program ends, even by kill -9 and even while this one was still loading, the node stops as on SIGTERM
    // instead of holding its port and data directory for nobody.
    onParentEnd(() => stop())
    // `brook dev` stopping its whole cluster says so on the channel: with every node stopping, none can take another's
    // leaderships, and the last would wait out broker.session.timeout.ms for a controller quorum already gone.
    process.on('message', (message) => {
      if (message === STOP_WITH_CLUSTER) stop({ withCluster: true })
    })
    const broker = await Broker.start(config)
    tellParent({ type: 'brook:ready', bootstrapServers: broker.advertisedAddress, clusterId: broker.services.clusterId })
    // A rejection that nothing awaits belongs to one request or one background task, not to the node: it is logged
    // as the bug it is and the node keeps serving, as Kafka's threads log what they did not expect and carry on.
    process.on('unhandledRejection', (reason) => broker.log.error(`unhandled rejection: ${(reason as Error)?.stack ?? reason}`))
    let stopping = false
    stop = (options: StopOptions = {}): void => {
      // A signal and the parent's end may both ask.
      if (stopping) return
      stopping = true
      broker.stop(options).then(
        () => {
          // A directory brook/testing's startBrook made goes with the node, whoever stopped it.
          removeIfTemporary(config.dataDir ?? DEFAULT_CONFIG.dataDir)
          process.exit(0)
        },
        (error: Error) => {
          broker.log.error(`stopping failed: ${error.stack ?? error}`)
          process.exit(1)
        },
      )
    }
    if (stopRequested) stop(stopRequested)
  })
}

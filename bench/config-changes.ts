/**
 * `node dist/bench/config-changes.js --ports 9093,9094 [--same] [--changes 100]`: how long dynamic broker config
 * changes take to be answered when several admins change the BROKER resource "" (every node's) at once, against a
 * running node or cluster (`brook dev --nodes 3`). One client per port given, each sending `--changes`
 * IncrementalAlterConfigs SETs in a row: of different configs (`log.retention.ms`, `log.retention.bytes`, ...) unless
 * `--same` has them all set `log.retention.ms`. Prints one JSON line: the answers, the total ms, p50 and max ms, and
 * how many took over a second (a forwarded answer waits until the node's metadata image shows the change).
 */
import { errorText, KafkaClient } from '../client/kafka-client.js'
import { incrementalAlterConfigs, type IncrementalAlterConfigsRequest, type IncrementalAlterConfigsResponse } from '../protocol/messages/incremental-alter-configs.js'
import { ConfigOperation, ResourceType } from '../protocol/constants.js'
import { badCommandLine, benchCommand, number } from './args.js'

const CONFIGS = ['log.retention.ms', 'log.retention.bytes', 'log.cleaner.delete.retention.ms', 'log.cleaner.min.compaction.lag.ms']

const command = benchCommand('config-changes', 'node dist/bench/config-changes.js --ports <p,p> [--host 127.0.0.1] [--same] [--changes 100]', 'Concurrent dynamic broker config changes of the resource "": how long each is answered in.')
  .requiredOption('--ports <p,p>', 'the ports of the nodes the clients send through, one client each (a port twice: two clients through one node)')
  .option('--host <host>', 'the nodes\' host', '127.0.0.1')
  .option('--same', 'every client sets the same config (log.retention.ms)')
  .option('--changes <n>', 'changes each client sends in a row', number(1), 100)
  .parse()
const options = command.opts()
const ports = options.ports.split(',').map(Number)
if (ports.some((port) => !Number.isInteger(port) || port <= 0 || port > 65535) || ports.length > CONFIGS.length) badCommandLine(command, `--ports takes 1 to ${CONFIGS.length} ports`)

const answersMs: number[] = []
const started = Date.now()
await Promise.all(
  ports.map(async (port, client) => {
    const kafka = await KafkaClient.connect(options.host, port, { clientId: `config-changes-${client}` })
    try {
      const name = options.same ? CONFIGS[0]! : CONFIGS[client]!
      for (let i = 0; i < options.changes; i++) {
        const sent = Date.now()
        const answer = await kafka.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
          resources: [{ resourceType: ResourceType.BROKER, resourceName: '', configs: [{ name, configOperation: ConfigOperation.SET, value: String(86_400_000 + client * 1000 + i) }] }],
          validateOnly: false,
        })
        const result = answer.responses[0]!
        if (result.errorCode !== 0) throw new Error(`change ${i} through port ${port}: ${errorText(result.errorCode, result.errorMessage)}`)
        answersMs.push(Date.now() - sent)
      }
    } finally {
      kafka.close()
    }
  }),
)
answersMs.sort((a, b) => a - b)
console.log(
  JSON.stringify({
    clients: ports.length,
    same: options.same === true,
    answers: answersMs.length,
    totalMs: Date.now() - started,
    p50Ms: answersMs[answersMs.length >> 1],
    maxMs: answersMs.at(-1),
    overOneSecond: answersMs.filter((ms) => ms > 1000).length,
  }),
)

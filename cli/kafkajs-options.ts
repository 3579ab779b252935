/**
 * What the commands built on kafkajs (`simulate`, `process`, `demo`) share about reaching a cluster: the
 * --bootstrap-server list in kafkajs's form, and `--kafka-config`, the further kafkajs client settings (TLS, SASL,
 * client id, timeouts) that another Kafka cluster needs.
 */
import { bootstrapServers } from './client-command.js'
import { loadKafkaSettings, type KafkaSettings } from './load-module.js'
import { parseBootstrapServers } from '../client/address.js'

export const KAFKA_CONFIG_DESCRIPTION =
  'kafkajs client settings for other clusters (ssl, sasl, clientId, timeouts): a JSON file, or a .js/.ts module whose default export is them'

/** --bootstrap-server as kafkajs takes brokers: `['host:port', ...]`; a bad one is an error naming the option. */
export function brokerList(options: { bootstrapServer: string }): string[] {
  return bootstrapServers(options).map(({ host, port }) => `${host}:${port}`)
}

/** The --kafka-config settings, or undefined when the flag is not given. */
export async function kafkaSettings(options: { kafkaConfig?: string }): Promise<KafkaSettings | undefined> {
  return options.kafkaConfig === undefined ? undefined : loadKafkaSettings(options.kafkaConfig)
}

/** How long `explainedFailure` waits for each bootstrap server's answer to ApiVersions. */
const PROBE_TIMEOUT_MS = 5000

/**
 * `error`, a kafkajs client's failure to reach the cluster, with what Brook's own client finds at the bootstrap
 * servers that accept connections but do not answer as Kafka nodes do. Against a node that is paused (SIGSTOP) or
 * hung, or a port that is not a Kafka listener and stays silent, kafkajs ends with "Broker not connected" or a
 * request timed out, which reads as if nothing had connected; each such server is named, with the likely reasons
 * (`127.0.0.1:9092 accepted the connection but did not answer ApiVersions within 5 s: ...`). The message of `error`
 * is changed in place (its class stays, for the caller's handling); servers that answer, or refuse the connection
 * (which kafkajs says itself), add nothing.
 */
export async function explainedFailure(servers: readonly string[], error: Error): Promise<Error> {
  if (!/not connected|timed out|timeout|connection error|closed connection/i.test(error.message)) return error
  // Brook's own client, loaded only for a failure it may explain.
  const { ConnectionError, KafkaClient } = await import('../client/kafka-client.js')
  const found = await Promise.all(
    parseBootstrapServers(servers.join(',')).map(async ({ host, port }) => {
      try {
        const client = await KafkaClient.connect(host, port, { timeoutMs: PROBE_TIMEOUT_MS })
        client.close()
        return null
      } catch (probe) {
        return probe instanceof ConnectionError && /accepted the connection|before ApiVersions was answered/.test(probe.message) ? probe.message : null
      }
    }),
  )
  const silent = found.filter((line): line is string => line !== null)
  if (silent.length > 0) error.message = `${error.message}; ${silent.join('; ')}`
  return error
}

/**
 * What the commands built on kafkajs (`simulate`, `process`, `demo`) share about reaching a cluster: the
 * --bootstrap-server list in kafkajs's form, and `--kafka-config`, the further kafkajs client settings (TLS, SASL,
 * client id, timeouts) that another Kafka cluster needs.
 */
import { bootstrapServers } from './client-command.js'
import { loadKafkaSettings, type KafkaSettings } from './load-module.js'

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

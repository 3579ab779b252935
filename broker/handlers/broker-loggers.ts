/**
 * The node's BROKER_LOGGER config resource (ConfigResource.Type 8, KIP-412): its log level, read with DescribeConfigs
 * and changed while the node runs with IncrementalAlterConfigs, as `kafka-configs.sh --entity-type broker-loggers
 * --entity-name <node id>` does with a Kafka broker's log4j loggers (Kafka's ConfigHelper.describeConfigs and
 * RuntimeLoggerManager).
 *
 * Behaviour
 * - A Brook node has one logger, `root` (Kafka's name for the logger every other one inherits from), whose value is
 *   the node's level in Kafka's spelling: ERROR, WARN, INFO or DEBUG (`--log-level`). Its config source is
 *   DYNAMIC_BROKER_LOGGER_CONFIG, it is not read-only, and it has no synonyms, as in Kafka.
 * - The resource's name is the node id of the node asked: '' or another node's id is INVALID_REQUEST ("Broker id must
 *   not be empty", "Unexpected broker id, expected 1 but received 2"), and so is a name that is no integer.
 * - SET of `root` to one of the four levels takes effect at once, for every later line, and is not kept across a
 *   restart (the node starts at its --log-level again), as Kafka's runtime log4j changes are not. Another level
 *   (Kafka's FATAL and TRACE too, which Brook's logger does not have) is INVALID_CONFIG naming the valid ones; a
 *   logger other than `root` is INVALID_CONFIG ("Logger 'kafka.server' does not exist!"); DELETE of `root` is
 *   INVALID_REQUEST ("Removing the log level of the root logger is not allowed"); APPEND and SUBTRACT are
 *   INVALID_REQUEST. Every change of the resource is checked before any is applied; `validateOnly` applies none.
 * - The legacy AlterConfigs API does not take this resource (INVALID_REQUEST, as in Kafka).
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { ConfigOperation, ConfigSource, ConfigType, ResourceType } from '../../protocol/constants.js'
import type { DescribeConfigsResponseDescribeConfigsResult } from '../../protocol/messages/describe-configs.js'
import type { BrokerServices } from '../handler.js'
import type { LogLevel } from '../config.js'
import { quote } from '../quote.js'

/** Kafka's name of the one logger a Brook node has. */
export const ROOT_LOGGER = 'root'

/** Brook's levels in Kafka's spelling (LogLevelConfig), from the fewest lines to the most. */
const LEVELS: Record<string, LogLevel> = { ERROR: 'error', WARN: 'warn', INFO: 'info', DEBUG: 'debug' }

/** The node id a BROKER_LOGGER resource names, checked against this node's. Throws KafkaError INVALID_REQUEST. */
function checkNodeId(services: BrokerServices, name: string): void {
  if (name === '') throw new KafkaError(ErrorCode.INVALID_REQUEST, 'Broker id must not be empty')
  if (!/^-?\d+$/.test(name)) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Broker id must be an integer, but it is: ${quote(name)}`)
  const nodeId = services.endpoint.nodeId
  if (Number(name) !== nodeId) throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unexpected broker id, expected ${nodeId} but received ${quote(name)}`)
}

/**
 * DescribeConfigs of the BROKER_LOGGER resource `name`: `root` and the node's level (only the `keys` asked for, all
 * when null or empty). Errors, as the result's code: INVALID_REQUEST for a name that is not this node's id.
 */
export function describeBrokerLoggers(services: BrokerServices, name: string, keys: readonly string[] | null): DescribeConfigsResponseDescribeConfigsResult {
  const result = { resourceType: ResourceType.BROKER_LOGGER, resourceName: name }
  try {
    checkNodeId(services, name)
  } catch (error) {
    if (!(error instanceof KafkaError)) throw error
    return { ...result, errorCode: error.code, errorMessage: error.message, configs: [] }
  }
  const wanted = keys === null || keys.length === 0 || keys.includes(ROOT_LOGGER)
  const configs = wanted
    ? [
        {
          name: ROOT_LOGGER,
          value: services.log.level.toUpperCase(),
          readOnly: false,
          isDefault: false,
          configSource: ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG,
          isSensitive: false,
          synonyms: [],
          configType: ConfigType.STRING,
          documentation: null,
        },
      ]
    : []
  return { ...result, errorCode: ErrorCode.NONE, errorMessage: null, configs }
}

/**
 * IncrementalAlterConfigs of the BROKER_LOGGER resource `name`: checks every change, then (unless `validateOnly`)
 * applies them in order. Errors, as the answer's code and message: INVALID_REQUEST or INVALID_CONFIG as the module
 * comment says.
 */
export function alterBrokerLoggers(
  services: BrokerServices,
  name: string,
  changes: readonly { readonly name: string; readonly configOperation: number; readonly value: string | null }[],
  validateOnly: boolean,
): { errorCode: number; errorMessage: string | null } {
  let levels: LogLevel[]
  try {
    checkNodeId(services, name)
    levels = changes.map((change) => checkedChange(change))
  } catch (error) {
    if (!(error instanceof KafkaError)) throw error
    return { errorCode: error.code, errorMessage: error.message }
  }
  if (!validateOnly) {
    for (const level of levels) {
      services.log.setLevel(level)
      // Kafka logs each change at WARN, so that it shows whatever the new level.
      services.log.warn(`the log level of ${ROOT_LOGGER} is now ${level.toUpperCase()}`)
    }
  }
  return { errorCode: ErrorCode.NONE, errorMessage: null }
}

/** The level one change sets. Throws KafkaError INVALID_REQUEST or INVALID_CONFIG (RuntimeLoggerManager's checks). */
function checkedChange(change: { readonly name: string; readonly configOperation: number; readonly value: string | null }): LogLevel {
  const { name, configOperation, value } = change
  if (configOperation === ConfigOperation.APPEND || configOperation === ConfigOperation.SUBTRACT) {
    const operation = configOperation === ConfigOperation.APPEND ? 'APPEND' : 'SUBTRACT'
    throw new KafkaError(ErrorCode.INVALID_REQUEST, `${operation} operation is not allowed for the BROKER_LOGGER resource`)
  }
  if (configOperation !== ConfigOperation.SET && configOperation !== ConfigOperation.DELETE) {
    throw new KafkaError(ErrorCode.INVALID_REQUEST, `Unknown operation type ${configOperation} is not allowed for the BROKER_LOGGER resource`)
  }
  if (name !== ROOT_LOGGER) throw new KafkaError(ErrorCode.INVALID_CONFIG, `Logger ${quote(name)} does not exist!`)
  if (configOperation === ConfigOperation.DELETE) {
    throw new KafkaError(ErrorCode.INVALID_REQUEST, `Removing the log level of the ${ROOT_LOGGER} logger is not allowed`)
  }
  const level = value === null ? undefined : LEVELS[value]
  if (level === undefined) {
    const valid = Object.keys(LEVELS).sort().join(', ')
    throw new KafkaError(ErrorCode.INVALID_CONFIG, `Cannot set the log level of ${ROOT_LOGGER} to ${quote(String(value))} as it is not a supported log level. Valid log levels are ${valid}`)
  }
  return level
}

/**
 * A node's BROKER_LOGGER config resource (KIP-412, broker/handlers/broker-loggers.ts) against a real broker process:
 * kafkajs's describeConfigs (which sends it to the node it names) reads the root logger's level, @platformatic/kafka's
 * incrementalAlterConfigs changes it while the node runs, and the node's log shows the change at once; the refusals
 * answer Kafka's codes and messages (ConfigHelper.describeConfigs, RuntimeLoggerManager, ConfigAdminManager); and
 * `brook cluster log-level` reads and sets it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { Admin as PlatformaticAdmin } from '@platformatic/kafka'
import { ErrorCode } from '../../protocol/errors.js'
import { ConfigOperation, ConfigSource } from '../../protocol/constants.js'
import { alterConfigs, type AlterConfigsRequest, type AlterConfigsResponse } from '../../protocol/messages/alter-configs.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../protocol/messages/describe-configs.js'
import { deleteGroups, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../../protocol/messages/delete-groups.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../protocol/messages/incremental-alter-configs.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { withClient } from '../helpers/kafka.js'
import { waitFor } from '../helpers/wait.js'
import { brook } from '../cli/run-brook.js'

const BROKER_LOGGER = 8

let broker: BrokerProcess
let admin: Admin

beforeAll(async () => {
  broker = await startBroker()
  admin = new Kafka({ clientId: 'broker-loggers', brokers: [broker.address], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
})

afterAll(async () => {
  await admin?.disconnect()
  await broker?.stop()
  broker?.cleanup()
})

/** The root logger's entry as kafkajs's describeConfigs reads it from node 1. */
async function rootLogger() {
  const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER_LOGGER, name: '1' }], includeSynonyms: true })
  return resources[0]!.configEntries
}

/** IncrementalAlterConfigs of BROKER_LOGGER resources through Brook's wire client: each resource's code and message. */
function alterLoggers(resources: IncrementalAlterConfigsRequest['resources'], validateOnly = false) {
  return withClient(broker, async (client) => {
    const answer = await client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, { resources, validateOnly })
    return answer.responses.map(({ resourceName, errorCode, errorMessage }) => [resourceName, errorCode, errorMessage])
  })
}

/** Waits until the node's output holds `line`. */
function loggedAtLast(line: RegExp): Promise<true> {
  return waitFor(`the node to log ${line}`, () => line.test(broker.output()))
}

/** Asks the node to delete a group that does not exist: the one line it logs about it is at DEBUG. */
async function deleteMissingGroup(groupId: string): Promise<void> {
  const answer = await withClient(broker, (client) => client.request<DeleteGroupsRequest, DeleteGroupsResponse>(deleteGroups, 2, { groupsNames: [groupId] }))
  expect(answer.results[0]!.errorCode).toBe(ErrorCode.GROUP_ID_NOT_FOUND)
}

describe('the BROKER_LOGGER resource', () => {
  it('kafkajs describeConfigs reads the root logger at the node\'s --log-level; a level set with @platformatic/kafka takes effect at once', async () => {
    expect(await rootLogger()).toEqual([expect.objectContaining({ configName: 'root', configValue: 'INFO', readOnly: false, isSensitive: false, configSource: ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG, configSynonyms: [] })])
    await deleteMissingGroup('quiet-before')

    const platformatic = new PlatformaticAdmin({ clientId: 'broker-loggers-plt', bootstrapBrokers: [broker.address], retries: 0 })
    try {
      await platformatic.incrementalAlterConfigs({ resources: [{ resourceType: BROKER_LOGGER, resourceName: '1', configs: [{ name: 'root', configOperation: ConfigOperation.SET, value: 'DEBUG' }] }] })
    } finally {
      await platformatic.close()
    }
    expect(await rootLogger()).toEqual([expect.objectContaining({ configName: 'root', configValue: 'DEBUG' })])
    // The node's stderr reaches this process on its own pipe, after the answers: each check waits for a line the node
    // wrote after the one looked for (the pipe keeps their order).
    await loggedAtLast(/ WARN \[node 1\] the log level of root is now DEBUG\n/)
    expect(broker.output()).not.toContain("delete group 'quiet-before'")
    await deleteMissingGroup('heard')
    await loggedAtLast(/DEBUG \[node 1\] delete group 'heard': GROUP_ID_NOT_FOUND\n/)

    const info = [{ resourceType: BROKER_LOGGER, resourceName: '1', configs: [{ name: 'root', configOperation: ConfigOperation.SET, value: 'INFO' }] }]
    expect(await alterLoggers(info)).toEqual([['1', ErrorCode.NONE, null]])
    await deleteMissingGroup('quiet-after')
    expect(await alterLoggers(info)).toEqual([['1', ErrorCode.NONE, null]])
    await loggedAtLast(/(the log level of root is now INFO\n[^]*){2}/)
    expect(broker.output()).not.toContain("delete group 'quiet-after'")
  })

  it('refuses what Kafka refuses, each change checked before any is applied; validateOnly applies nothing', async () => {
    const SET = ConfigOperation.SET
    const root = (configOperation: number, value: string | null) => ({ name: 'root', configOperation, value })
    const resource = (resourceName: string, ...configs: { name: string; configOperation: number; value: string | null }[]) => ({ resourceType: BROKER_LOGGER, resourceName, configs })
    const valid = 'Valid log levels are DEBUG, ERROR, INFO, WARN'
    expect(await alterLoggers([resource('1', root(SET, 'DEBUG'), { name: 'kafka.server', configOperation: SET, value: 'DEBUG' })])).toEqual([['1', ErrorCode.INVALID_CONFIG, "Logger 'kafka.server' does not exist!"]])
    expect(await alterLoggers([resource('1', root(SET, 'TRACE'))])).toEqual([['1', ErrorCode.INVALID_CONFIG, `Cannot set the log level of root to 'TRACE' as it is not a supported log level. ${valid}`]])
    expect(await alterLoggers([resource('1', root(SET, 'debug'))])).toEqual([['1', ErrorCode.INVALID_CONFIG, `Cannot set the log level of root to 'debug' as it is not a supported log level. ${valid}`]])
    expect(await alterLoggers([resource('1', root(ConfigOperation.DELETE, null))])).toEqual([['1', ErrorCode.INVALID_REQUEST, 'Removing the log level of the root logger is not allowed']])
    expect(await alterLoggers([resource('1', root(ConfigOperation.APPEND, 'DEBUG'))])).toEqual([['1', ErrorCode.INVALID_REQUEST, 'APPEND operation is not allowed for the BROKER_LOGGER resource']])
    expect(await alterLoggers([resource('1', root(ConfigOperation.SUBTRACT, 'DEBUG'))])).toEqual([['1', ErrorCode.INVALID_REQUEST, 'SUBTRACT operation is not allowed for the BROKER_LOGGER resource']])
    expect(await alterLoggers([resource('1', root(SET, null))])).toEqual([['1', ErrorCode.INVALID_REQUEST, 'Null value not supported for : root']])
    expect(await alterLoggers([resource('2', root(SET, 'DEBUG')), resource('', root(SET, 'DEBUG')), resource('one', root(SET, 'DEBUG'))])).toEqual([
      ['2', ErrorCode.INVALID_REQUEST, "Unexpected broker id, expected 1 but received '2'"],
      ['', ErrorCode.INVALID_REQUEST, 'Broker id must not be empty'],
      ['one', ErrorCode.INVALID_REQUEST, "Broker id must be an integer, but it is: 'one'"],
    ])
    expect(await alterLoggers([resource('1', root(SET, 'ERROR'))], true)).toEqual([['1', ErrorCode.NONE, null]])
    expect(await rootLogger()).toEqual([expect.objectContaining({ configName: 'root', configValue: 'INFO' })])

    // The legacy AlterConfigs API does not take the resource; DescribeConfigs checks the node id as the alter does.
    const legacy = await withClient(broker, (client) =>
      client.request<AlterConfigsRequest, AlterConfigsResponse>(alterConfigs, 2, { resources: [{ resourceType: BROKER_LOGGER, resourceName: '1', configs: [{ name: 'root', value: 'DEBUG' }] }], validateOnly: false }),
    )
    expect(legacy.responses[0]).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST })
    const described = await withClient(broker, (client) =>
      client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
        resources: [
          { resourceType: BROKER_LOGGER, resourceName: '', configurationKeys: null },
          { resourceType: BROKER_LOGGER, resourceName: '7', configurationKeys: null },
          { resourceType: BROKER_LOGGER, resourceName: '1', configurationKeys: ['kafka.server'] },
        ],
        includeSynonyms: false,
        includeDocumentation: false,
      }),
    )
    expect(described.results.map(({ errorCode, errorMessage, configs }) => [errorCode, errorMessage, configs.length])).toEqual([
      [ErrorCode.INVALID_REQUEST, 'Broker id must not be empty', 0],
      [ErrorCode.INVALID_REQUEST, "Unexpected broker id, expected 1 but received '7'", 0],
      [ErrorCode.NONE, null, 0],
    ])
    expect(await rootLogger()).toEqual([expect.objectContaining({ configName: 'root', configValue: 'INFO' })])
  })

  it('`brook cluster log-level` reads and sets it, and says in one line which nodes there are for another id', async () => {
    const server = ['--bootstrap-server', broker.address]
    expect(await brook(['cluster', 'log-level', '--id', '1', ...server])).toMatchObject({ code: 0, stdout: 'Node 1 logs at INFO.\n' })
    expect(await brook(['cluster', 'log-level', '--id', '1', '--set', 'warn', ...server])).toMatchObject({ code: 0, stdout: 'Node 1 now logs at WARN, until it restarts.\n' })
    expect(await rootLogger()).toEqual([expect.objectContaining({ configName: 'root', configValue: 'WARN' })])
    expect(await brook(['cluster', 'log-level', '--id', '3', ...server])).toMatchObject({ code: 1, stdout: '', stderr: "brook: cannot read the log level of node 3: there is no node 3 (the cluster's nodes: 1)\n" })
    expect(await brook(['cluster', 'log-level', '--id', '1', '--set', 'trace', ...server])).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^brook: option '--set <level>' argument 'trace' is invalid\. Allowed choices are error, warn, info, debug\.\n$/) })
  })
})

/**
 * ApiVersions on a real broker process through Brook's own wire client: v4 (what Kafka 4's Java clients ask first)
 * answers exactly as v3, with the dispatcher's whole table, ApiVersions itself 0-4 among it; both check the client's
 * software name and version (ApiVersionsRequest.isValid) and answer INVALID_REQUEST for one that is not valid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { withClient } from '../helpers/kafka.js'
import { apiVersions, type ApiVersionsRequest, type ApiVersionsResponse } from '../../protocol/messages/api-versions.js'

// Kafka's codes, as the protocol guide lists them.
const INVALID_REQUEST = 42
const API_VERSIONS = 18

describe('ApiVersions', () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker()
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  const ask = (version: number, clientSoftwareName: string, clientSoftwareVersion: string) =>
    withClient(broker, (client) => client.request<ApiVersionsRequest, ApiVersionsResponse>(apiVersions, version, { clientSoftwareName, clientSoftwareVersion }))

  it('v4 answers as v3 does, and advertises ApiVersions 0-4', async () => {
    const v3 = await ask(3, 'apache-kafka-java', '4.0.0')
    const v4 = await ask(4, 'apache-kafka-java', '4.0.0')
    expect(v4).toEqual(v3)
    expect(v4.errorCode).toBe(0)
    expect(v4.apiKeys.find((k) => k.apiKey === API_VERSIONS)).toEqual({ apiKey: API_VERSIONS, minVersion: 0, maxVersion: 4 })
  })

  it('refuses a software name or version that is not valid (INVALID_REQUEST, no ranges, as ApiVersionsRequest.getErrorResponse) in v3 and v4', async () => {
    for (const version of [3, 4]) {
      expect(await ask(version, 'bad name!', '1.0')).toMatchObject({ errorCode: INVALID_REQUEST, apiKeys: [] })
      expect(await ask(version, 'kafka', '-1.0')).toMatchObject({ errorCode: INVALID_REQUEST, apiKeys: [] })
    }
  })
})

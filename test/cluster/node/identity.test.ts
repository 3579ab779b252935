/**
 * A node's data directory records its cluster and node ids: a node given another cluster's (or another node's) data
 * directory refuses to start with one line, and a new cluster node must be told its cluster id. The config file
 * takes the voters under Kafka's name, and a lone voter is a whole quorum: it leads and registers itself.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBroker } from '../../helpers/broker.js'
import { configArgs } from '../../helpers/broker-config.js'
import { freePorts } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { brook, expectOneLineError } from '../../cli/run-brook.js'
import { LogStore } from '../../../storage/log-store.js'

describe('a node\'s data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brook-identity-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('keeps the cluster id it was made with and refuses another cluster\'s id or another node id', async () => {
    const clusterA = (await brook(['cluster', 'new-id'])).stdout.trim()
    const clusterB = (await brook(['cluster', 'new-id'])).stdout.trim()
    expect(clusterA).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(clusterB).not.toBe(clusterA)
    const dataDir = join(dir, 'node-1')
    const node = await startBroker({ dataDir, args: ['--node-id', '1', '--cluster-id', clusterA] })
    expect(node.output()).toContain(`cluster ${clusterA}`)
    // A node without voters runs alone, and says so to `brook cluster status`.
    expectOneLineError(await brook(['cluster', 'status', '--bootstrap-server', node.address]), `the node at ${node.address} is not part of a replicated cluster`)
    await node.stop()
    // Restarted without the id, it keeps its own.
    const again = await startBroker({ dataDir, args: ['--node-id', '1'] })
    expect(again.output()).toContain(`cluster ${clusterA}`)
    await again.stop()
    expectOneLineError(
      await brook(['start', '--port', '0', '--node-id', '1', '--data-dir', dataDir, '--cluster-id', clusterB]),
      `the data directory ${dataDir} belongs to cluster ${clusterA}, not cluster ${clusterB}`,
    )
    expectOneLineError(await brook(['start', '--port', '0', '--node-id', '2', '--data-dir', dataDir]), 'this data directory belongs to node 1, not node 2')
  })

  it('needs a cluster id and a place among the voters to make a new cluster node, and leaves no data directory behind when refused', async () => {
    const dataDir = join(dir, 'new-node')
    expectOneLineError(
      await brook(['start', '--port', '0', '--node-id', '1', '--data-dir', dataDir, '--controller-quorum-voters', '1@127.0.0.1:1']),
      `${dataDir} is a new data directory: a cluster node needs --cluster-id`,
    )
    expect(existsSync(dataDir)).toBe(false)
    const clusterId = (await brook(['cluster', 'new-id'])).stdout.trim()
    expectOneLineError(
      await brook(['start', '--port', '0', '--node-id', '4', '--data-dir', dataDir, '--controller-quorum-voters', '1@127.0.0.1:1', '--cluster-id', clusterId]),
      'node 4 is not among controller.quorum.voters (1); every node of a Brook cluster is a voter',
    )
    expect(existsSync(dataDir)).toBe(false)
  })

  it('refuses to start a single node\'s directory made before voters were recorded as a cluster node, which would delete its topics', async () => {
    const dataDir = join(dir, 'old-single')
    const single = await startBroker({ dataDir, args: ['--node-id', '1'] })
    const clusterId = /cluster (\S+),/.exec(single.output())![1]!
    expect((await brook(['topics', 'create', 'kept', '--bootstrap-server', single.address])).code).toBe(0)
    await single.stop()
    // As an older Brook wrote it: an identity without voters (neither a list nor null), and no metadata log.
    const store = await LogStore.open(dataDir)
    try {
      const { voters, ...older } = (await store.getNodeValue<{ clusterId: string; nodeId: number; voters?: unknown }>('identity'))!
      expect(voters).toBeNull()
      await store.putNodeValue('identity', older)
    } finally {
      await store.close()
    }
    expectOneLineError(
      await brook(['start', '--port', '0', '--node-id', '1', '--data-dir', dataDir, '--cluster-id', clusterId, '--controller-quorum-voters', '1@127.0.0.1:1']),
      `the data directory ${dataDir} holds a single node's data; a node of a replicated cluster needs a new data directory`,
    )
    // Still a single node's, topics and all.
    const again = await startBroker({ dataDir, args: ['--node-id', '1'] })
    try {
      expect((await brook(['topics', 'list', '--bootstrap-server', again.address])).stdout.split('\n')).toContain('kept')
    } finally {
      await again.stop()
    }
  })

  it('takes controller.quorum.voters from the config file under Kafka\'s name; a lone voter leads and registers itself', async () => {
    const [controllerPort] = await freePorts(1)
    const clusterId = (await brook(['cluster', 'new-id'])).stdout.trim()
    // The file's keys are what a user writes: Kafka's name for the voters, BrokerConfig's for the rest.
    const file = { 'controller.quorum.voters': `7@127.0.0.1:${controllerPort}`, nodeId: 7, clusterId } as Record<string, unknown>
    const node = await startBroker({ dataDir: join(dir, 'lone-voter'), args: configArgs(file) })
    try {
      expect(node.output()).toContain(`controller listener 127.0.0.1:${controllerPort}`)
      await waitFor('the lone voter leading and registered unfenced', async () => {
        const shown = await brook(['cluster', 'status', '--bootstrap-server', node.address])
        return /^7 +leader +\d+ +0 +unfenced +127\.0\.0\.1:\d+$/m.test(shown.stdout) && shown.stdout.includes('Controller: 7')
      })
    } finally {
      await node.stop()
    }
  })
})

/**
 * A kafkajs group consumer stopped while kafkajs rebuilds its fetchers ends its disconnect (processor/runtime/
 * fetch-guards.ts). Without the guard, kafkajs 2.2.4 starts new fetchers after the stop, which fetch through the
 * stopped runner in a loop of promise continuations that holds the event loop for good: `brook process` ran at a full
 * core after Ctrl-C, deaf to a second one, after a node of its cluster was killed (a manual trial saw it once in 16).
 *
 * On a three-node cluster of real processes, a consumer (in a child process: stopped-fetches-consumer.mjs) reads a
 * topic held by two of the nodes only, bootstrapped from those two, and holds the first batch it gets in its handler.
 * The third node, neither the controller nor the group's coordinator, is then killed: once the controller has fenced
 * it, the consumer's metadata lists two brokers, and kafkajs stops its fetchers to rebuild them, waiting for the
 * handler. The consumer is disconnected in that wait and the handler lets go: the disconnect ends, and the process
 * exits.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CoordinatorType } from '../../protocol/constants.js'
import { agreedCoordinator, agreedPlacement, QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
import { killedAtFileEnd } from '../helpers/file-end.js'
import { waitFor } from '../helpers/wait.js'

const SCRIPT = resolve(import.meta.dirname, 'stopped-fetches-consumer.mjs')
const TOPIC = 'stopped-fetches'
const GROUP = 'stopped-fetches-group'
const running = killedAtFileEnd()

describe('a kafkajs consumer stopped while it rebuilds its fetchers', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  it('ends its disconnect, and its process exits', { timeout: 120_000 }, async () => {
    const controller = (await cluster().status(1)).controllerId
    const coordinator = await agreedCoordinator(cluster(), GROUP, CoordinatorType.GROUP)
    const victim = cluster().nodeIds.find((id) => id !== controller && id !== coordinator)!
    const [a, b] = cluster().nodeIds.filter((id) => id !== victim) as [number, number]
    const admin = cluster().kafka('stopped-fetches-admin', [a, b]).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, replicaAssignment: [{ partition: 0, replicas: [a, b] }, { partition: 1, replicas: [b, a] }] }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    await agreedPlacement(cluster(), TOPIC, 2, 2)
    const producer = cluster().kafka('stopped-fetches-producer', [a, b]).producer()
    await producer.connect()
    try {
      await producer.send({ topic: TOPIC, messages: [{ value: 'held', partition: 0 }], acks: -1 })
    } finally {
      await producer.disconnect()
    }

    const brokers = [a, b].map((id) => cluster().nodes.get(id)!.address)
    const child = spawn(process.execPath, [SCRIPT, JSON.stringify({ brokers, topic: TOPIC, groupId: GROUP })], { stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    let exitCode: number | null | undefined
    child.once('exit', (code) => {
      exitCode = code
      running.delete(child)
    })
    /** What a failure adds: what the consumer wrote. */
    const wrote = (error: Error) => {
      throw new Error(`${error.message}; the consumer (victim node ${victim}) wrote:\n${output}`)
    }
    try {
      await waitFor('the consumer to hold its first batch', () => output.includes(`holding ${TOPIC}-0`)).catch(wrote)
      await cluster().nodes.get(victim)!.kill()
      await waitFor('the consumer to rebuild its fetchers, disconnect and exit', () => exitCode !== undefined).catch(wrote)
    } finally {
      child.kill('SIGKILL')
    }
    expect(output).toBe(`holding ${TOPIC}-0\nrebuilding\ndisconnected\n`)
    expect(exitCode).toBe(0)
  })
})

/**
 * Connection limits, as Kafka's SocketServer applies them: connections.max.idle.ms closes a connection that reads and
 * writes nothing (a half-sent frame included), max.connections.per.ip closes an extra connection at once,
 * max.connections keeps an extra connection unread until another closes, and running out of file descriptors leaves
 * the node up and serving once descriptors are free again. A client refused again and again for the same reason (an
 * old one asking Fetch v3, reconnecting at once) is logged once a minute, not at every connection. Frames sent in part
 * hold no place in queued.max.requests. Raw sockets: these are about connections, not requests.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, producePartition, withClient } from '../helpers/kafka.js'
import { RawConnection, apiVersionsV0, handBuiltBatch, parseApiVersionsV0, produceBody, produceResponseError, requestFrame } from '../helpers/wire.js'
import { waitFor } from '../helpers/wait.js'

let broker: BrokerProcess | undefined
const opened: RawConnection[] = []

afterEach(async () => {
  for (const connection of opened.splice(0)) connection.destroy()
  await broker?.stop()
  broker?.cleanup()
  broker = undefined
})

async function open(port: number): Promise<RawConnection> {
  const connection = await RawConnection.open(port)
  opened.push(connection)
  return connection
}

/** One ApiVersions round trip: the connection is served. */
async function expectServed(connection: RawConnection, correlationId = 1): Promise<void> {
  connection.send(apiVersionsV0(correlationId))
  expect(parseApiVersionsV0(await connection.nextFrame())).toMatchObject({ correlationId, errorCode: 0 })
}

describe('connections.max.idle.ms', () => {
  it('closes a connection that sends nothing, and one that stops in the middle of a frame', async () => {
    broker = await startBroker({ args: ['--connections-max-idle-ms', '300', '--log-level', 'debug'] })
    const silent = await open(broker.port)
    await expectServed(silent)
    const halfway = await open(broker.port)
    halfway.send(apiVersionsV0(2).subarray(0, 9))
    expect(await silent.closedWithin(30_000)).toBe(true)
    expect(await halfway.closedWithin(30_000)).toBe(true)
    expect(broker.output()).toMatch(/closing connection from 127\.0\.0\.1:\d+: idle for 300 ms \(connections\.max\.idle\.ms\)/)
    await expectServed(await open(broker.port))
  })
})

describe('a client refused again and again', () => {
  it('is logged once per minute and reason, each connection still closed', async () => {
    broker = await startBroker()
    for (let i = 0; i < 20; i++) {
      const old = await open(broker.port)
      // Fetch v3 (Kafka 4 serves v4 and later), as kafka-python pinned to api_version 0.10 sends it.
      old.send(requestFrame({ apiKey: 1, apiVersion: 3, correlationId: i }))
      expect(await old.closedWithin(10_000)).toBe(true)
    }
    // The node's stderr reaches the test through a pipe: wait for the first line before counting.
    await waitFor('the refusal logged', () => broker!.output().includes('Fetch v3 is not supported'))
    const logged = broker.output().split('\n').filter((line) => line.includes('Fetch v3 is not supported'))
    expect(logged).toHaveLength(1)
    expect(logged[0]).toMatch(/ WARN \[node 1\] closing connection from 127\.0\.0\.1:\d+: Fetch v3 is not supported \(supported: 4-\d+\)$/)
    // Another reason from the same host is its own line.
    const older = await open(broker.port)
    older.send(requestFrame({ apiKey: 1, apiVersion: 2, correlationId: 1 }))
    expect(await older.closedWithin(10_000)).toBe(true)
    await waitFor('the other refusal logged', () => broker!.output().includes('Fetch v2 is not supported'))
  })
})

describe('frames sent in part (slowloris)', () => {
  it('hold no place in queued.max.requests: clients that stall in the middle of frames do not stop the node serving others', async () => {
    broker = await startBroker({ args: ['--queued-max-requests', '5'] })
    // Twice as many stalled frames as there are places: each sends a frame's size and one byte of it, then nothing.
    const stalled = await Promise.all(Array.from({ length: 10 }, () => open(broker!.port)))
    for (const connection of stalled) connection.send(apiVersionsV0(1).subarray(0, 5))
    await new Promise((resolve) => setTimeout(resolve, 200))
    const others = await Promise.all(Array.from({ length: 3 }, () => open(broker!.port)))
    for (const [i, connection] of others.entries()) await expectServed(connection, 10 + i)
    // A whole request sent in two parts is served too, and a stalled one once it is finished.
    stalled[0]!.send(apiVersionsV0(1).subarray(5))
    expect(parseApiVersionsV0(await stalled[0]!.nextFrame())).toMatchObject({ correlationId: 1, errorCode: 0 })
  })
})

describe('max.connections.per.ip', () => {
  it('closes a connection beyond the limit at once; a new one is served after another closes', async () => {
    broker = await startBroker({ args: ['--max-connections-per-ip', '2'] })
    const first = await open(broker.port)
    const second = await open(broker.port)
    await expectServed(first)
    await expectServed(second)
    const third = await open(broker.port)
    expect(await third.closedWithin()).toBe(true)
    expect(broker.output()).toContain('rejected connection from 127.0.0.1: it already has max.connections.per.ip (2) connections')
    first.destroy()
    // The broker counts the closed one out when it sees it close; until then a new connection may still be refused.
    await waitFor('a new connection to be served', async () => {
      const next = await open(broker!.port)
      next.send(apiVersionsV0(5))
      return parseApiVersionsV0(await next.nextFrame(2000)).errorCode === 0
    })
    await expectServed(second, 6)
  })
})

describe('max.connections', () => {
  it('keeps a connection beyond the limit unread until another closes, then serves it', async () => {
    broker = await startBroker({ args: ['--max-connections', '2', '--log-level', 'debug'] })
    const first = await open(broker.port)
    const second = await open(broker.port)
    await expectServed(first)
    await expectServed(second)
    const waiting = await open(broker.port)
    waiting.send(apiVersionsV0(9))
    await waitFor('the broker to hold the connection', () => /connection from 127\.0\.0\.1 waits: max\.connections \(2\) reached/.test(broker!.output()))
    // Both served connections are still answered; the waiting one has had no answer and is still open.
    await expectServed(first, 2)
    await expectServed(second, 3)
    expect(waiting.isClosed).toBe(false)
    await expect(waiting.nextFrame(1)).rejects.toThrow(/no response/)
    first.destroy()
    expect(parseApiVersionsV0(await waiting.nextFrame())).toMatchObject({ correlationId: 9, errorCode: 0 })
  })
})

describe('running out of file descriptors', () => {
  it('keeps the node up and its database writable: it logs the condition, and serves a new client once connections close', async () => {
    broker = await startBroker({ openFileLimit: 256 })
    await createTopic(broker, 'still-writable')
    // More connections than the process has descriptors: the node keeps a quarter of them (64) for its own files and
    // closes the connections that would need those.
    const attempts = await Promise.all(Array.from({ length: 400 }, () => open(broker!.port).catch(() => null)))
    const connections = attempts.filter((connection) => connection !== null)
    await waitFor('the broker to report the shortage', () => /WARN .*closed new connections: the open-file limit \(256\) leaves descriptors for 192 connections/.test(broker!.output()))
    const served = await Promise.all(connections.map(async (connection, i) => {
      connection.send(apiVersionsV0(i))
      return connection.nextFrame(20_000).then(() => true, () => false)
    }))
    expect(served.filter(Boolean).length).toBeGreaterThan(0)
    expect(served.filter((answered) => !answered).length).toBeGreaterThan(0)
    expect(broker.child.exitCode).toBeNull()
    // The database still writes while connections hold every descriptor they may have.
    const writer = connections[served.indexOf(true)]!
    writer.send(requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 77 }, produceBody('still-writable', 0, handBuiltBatch(['during']))))
    expect(produceResponseError(await writer.nextFrame())).toEqual({ correlationId: 77, errorCode: 0 })
    for (const connection of connections) connection.destroy()
    await waitFor('a new client to be served', async () => {
      const next = await open(broker!.port)
      next.send(apiVersionsV0(1000))
      return parseApiVersionsV0(await next.nextFrame(2000)).errorCode === 0
    })
    await withClient(broker, async (client) => {
      expect((await producePartition(client, 'still-writable', 0, handBuiltBatch(['after']))).errorCode).toBe(0)
    })
  })
})

/**
 * `brook start`'s settings: flags and the --config file say the same things under the same rules (flags win), bad
 * values stop the command with one line before anything starts, and a setting visibly takes effect.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { brook, expectOneLineError, lines } from './run-brook.js'
import { readConfigFile } from '../../cli/start-options.js'
import { newClusterId } from '../../broker/cluster/voters.js'
import { freePorts } from '../helpers/cluster.js'

/** DescribeConfigsResponse.json configSource of a setting the node was started with. */
const STATIC_BROKER_CONFIG = 4

/**
 * A plain TCP port forward on 127.0.0.1 (what `docker -p`, `ssh -L` or `kubectl port-forward` make), listening before
 * its target is known: the node behind it must be told the forward's port at its start. Counts what it carried.
 */
async function portForward(): Promise<{ port: number; target: (port: number) => void; connections: () => number; close: () => Promise<void> }> {
  let targetPort = 0
  let connections = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((client) => {
    connections++
    const upstream = connect(targetPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    }
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    target: (port) => (targetPort = port),
    connections: () => connections,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

describe('brook start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brook-start-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  // Should a bad value ever be accepted, the broker started must not touch the working directory or port 9092.
  const contained = ['--port', '0', '--data-dir', join(dir, 'never-used')]

  function configFile(name: string, content: string): string {
    const file = join(dir, name)
    writeFileSync(file, content)
    return file
  }

  it('refuses a data directory that cannot be created in one line, also where Node 20\'s recursive mkdir would spin', async () => {
    // /proc takes no new directories: mkdir fails with ENOENT under an existing parent.
    expectOneLineError(
      await brook(['start', '--port', '0', '--data-dir', '/proc/brook-nowhere/node-1']),
      "cannot create the data directory /proc/brook-nowhere/node-1 (ENOENT: no such file or directory, mkdir '/proc/brook-nowhere')",
    )
  })

  it('stops cleanly on SIGHUP (its terminal closed), as on SIGTERM', async () => {
    const broker = await startBroker()
    try {
      const exited = new Promise<number | null>((resolve) => broker.child.once('exit', (code) => resolve(code)))
      broker.child.kill('SIGHUP')
      expect(await exited).toBe(0)
      expect(broker.output()).toMatch(/INFO \[node 1\] stopped/)
    } finally {
      broker.cleanup()
    }
  })

  it('shows every broker setting with its default in --help', async () => {
    const help = (await brook(['start', '--help'])).stdout.replace(/\s+/g, ' ')
    for (const [flag, value] of [
      ['--group-initial-rebalance-delay-ms <ms>', '3000'],
      ['--group-min-session-timeout-ms <ms>', '6000'],
      ['--group-max-session-timeout-ms <ms>', '1800000'],
      ['--offsets-retention-minutes <minutes>', '10080'],
      ['--log-retention-check-interval-ms <ms>', '300000'],
      ['--offsets-topic-partitions <n>', '50'],
      ['--message-max-bytes <bytes>', '1048588'],
      ['--queued-max-requests <n>', '500'],
      ['--queued-max-request-bytes <bytes>', '104857600'],
      ['--fetch-max-bytes <bytes>', '57671680'],
      ['--connections-max-idle-ms <ms>', '600000'],
      ['--max-connections <n>', '2147483647'],
      ['--max-connections-per-ip <n>', '2147483647'],
      ['--replica-lag-time-max-ms <ms>', '30000'],
      ['--replica-fetch-wait-max-ms <ms>', '500'],
      ['--controller-quorum-election-timeout-ms <ms>', '1000'],
    ]) {
      expect(help).toMatch(new RegExp(`${flag} [^-]*\\(default: ${value}\\)`))
    }
  })

  // Each is refused before the broker opens its data directory or a port.
  it.concurrent.for([
    [['--offsets-topic-partitions', 'many'], "brook: option '--offsets-topic-partitions <n>' argument 'many' is invalid. --offsets-topic-partitions must be a whole number"],
    [['--message-max-bytes', '-1'], "brook: option '--message-max-bytes <bytes>' argument '-1' is invalid. --message-max-bytes must be between 0 and 2147483647"],
    [['--group-initial-rebalance-delay-ms', '1.5'], "brook: option '--group-initial-rebalance-delay-ms <ms>' argument '1.5' is invalid. --group-initial-rebalance-delay-ms must be a whole number"],
    [['--group-min-session-timeout-ms', '9000', '--group-max-session-timeout-ms', '8000'], 'brook: group.min.session.timeout.ms (9000) must not be greater than group.max.session.timeout.ms (8000)'],
    [['--socket-request-max-bytes', '2000000', '--queued-max-request-bytes', '1000000'], 'brook: queued.max.request.bytes (1000000) must not be smaller than socket.request.max.bytes (2000000)'],
    [['--controller-quorum-voters', '1@127.0.0.1'], "brook: controller.quorum.voters: '1@127.0.0.1' is not id@host:port"],
    [['--controller-quorum-voters', '1@127.0.0.1:19092,1@127.0.0.1:19093'], 'brook: controller.quorum.voters names voter 1 twice'],
    [['--node-id', '2', '--port', '19093', '--controller-quorum-voters', '1@127.0.0.1:19092,2@127.0.0.1:19093'], "brook: controller.quorum.voters gives node 2's controller listener port 19093, which is its client port (--port 19093): the controller listener needs a port of its own (brook dev puts it 100 above the client port)"],
    // Kafka: "Each listener must have a different port", whatever their hosts: localhost and 127.0.0.1 are one address.
    // With a cluster id, a node that took it would reach its listeners and find its own port "already in use".
    [['--host', 'localhost', '--port', '19094', '--cluster-id', 'AAAAAAAAAAAAAAAAAAAAAA', '--controller-quorum-voters', '1@127.0.0.1:19094'], "brook: controller.quorum.voters gives node 1's controller listener port 19094, which is its client port (--port 19094): the controller listener needs a port of its own (brook dev puts it 100 above the client port)"],
    [['--host', '127.0.0.2', '--port', '19094', '--controller-quorum-voters', '1@127.0.0.3:19094'], "brook: controller.quorum.voters gives node 1's controller listener port 19094, which is its client port (--port 19094): the controller listener needs a port of its own (brook dev puts it 100 above the client port)"],
    [['--controller-quorum-voters', '1@127.0.0.1:19192', '--broker-session-timeout-ms', '2000'], 'brook: broker.session.timeout.ms (2000) must be greater than broker.heartbeat.interval.ms (2000): each node would be fenced between two of its heartbeats; keep the session several heartbeats long'],
    [['--cluster-id', 'not-an-id'], "brook: cluster id 'not-an-id' is not 16 bytes in base64url (22 characters, as `brook cluster new-id` prints)"],
    [['--fetch-max-bytes', '1000'], "brook: option '--fetch-max-bytes <bytes>' argument '1000' is invalid. --fetch-max-bytes must be between 1024 and 2147483647"],
    [['--replica-lag-time-max-ms', '0'], "brook: option '--replica-lag-time-max-ms <ms>' argument '0' is invalid. --replica-lag-time-max-ms must be between 1 and 2147483647"],
    [['--controller-quorum-election-timeout-ms', '0'], "brook: option '--controller-quorum-election-timeout-ms <ms>' argument '0' is invalid. --controller-quorum-election-timeout-ms must be between 1 and 2147483647"],
    [['--default-replication-factor', '3'], 'brook: default.replication.factor (3) above 1 needs --controller-quorum-voters: a single node keeps one replica of each partition'],
    [['--host', '0.0.0.0'], 'brook: --host 0.0.0.0 listens on every interface, but clients cannot connect to 0.0.0.0: give --advertised-host, the name or address clients reach this node by'],
    [['--host', '0.0.0.0', '--advertised-host', '::'], 'brook: --advertised-host :: is not an address clients can connect to; give the name or address clients reach this node by'],
    [['--host', ''], 'brook: --host is empty: give an interface to listen on'],
    [['--advertised-host', ''], 'brook: --advertised-host is empty: give the name or address clients reach this node by'],
    [['--data-dir', ''], 'brook: --data-dir is empty: give a directory'],
    [['--advertised-port', '0'], "brook: option '--advertised-port <port>' argument '0' is invalid. --advertised-port must be between 1 and 65535"],
    // The unspecified address however spelt (getaddrinfo makes 0.0.0.0 of 0): every interface, as 0.0.0.0 and ::.
    [['--host', '0'], 'brook: --host 0 listens on every interface, but clients cannot connect to 0: give --advertised-host, the name or address clients reach this node by'],
    [['--host', '::'], 'brook: --host :: listens on every interface, but clients cannot connect to [::]: give --advertised-host, the name or address clients reach this node by'],
    [['--host', '::0'], 'brook: --host ::0 listens on every interface, but clients cannot connect to [::0]: give --advertised-host, the name or address clients reach this node by'],
    [['--host', '0:0:0:0:0:0:0:0'], 'brook: --host 0:0:0:0:0:0:0:0 listens on every interface, but clients cannot connect to [0:0:0:0:0:0:0:0]: give --advertised-host, the name or address clients reach this node by'],
    [['--host', '0.0.0.0', '--advertised-host', '0'], 'brook: --advertised-host 0 is not an address clients can connect to; give the name or address clients reach this node by'],
    // A Kafka listener's host:port where a host belongs.
    [['--advertised-host', '127.0.0.1:33094'], 'brook: --advertised-host 127.0.0.1:33094 is not a host: give the name or address alone, and the port as --advertised-port'],
    [['--host', '[::1]:19095'], 'brook: --host [::1]:19095 is not a host: give the name or address alone, and the port as --port'],
    // QuorumConfig.parseVoterConnections: "Host string (0.0.0.0) is not routeable".
    [['--controller-quorum-voters', '1@0.0.0.0:19195'], "brook: controller.quorum.voters: '1@0.0.0.0:19195' is not routable: the other nodes connect to a voter at its address; give the name or address they reach node 1 by"],
    [['--controller-quorum-voters', '1@127.0.0.1:19195,2@[::]:19196'], "brook: controller.quorum.voters: '2@[::]:19196' is not routable: the other nodes connect to a voter at its address; give the name or address they reach node 2 by"],
  ] as const)('refuses %j in one line with exit code 1', async ([args, message], { expect }) => {
    expect(await brook(['start', ...contained, ...args])).toMatchObject({ code: 1, stdout: '', stderr: `${message}\n` })
  })

  it('checks the --config file the same way: types, bounds, unknown settings and JSON syntax', async () => {
    const cases: [string, string][] = [
      ['{"offsetsTopicPartitions": 0}', 'offsetsTopicPartitions must be between 1 and 10000, not 0'],
      ['{"groupInitialRebalanceDelayMs": "fast"}', 'groupInitialRebalanceDelayMs must be a number, not "fast"'],
      ['{"offsetsRetentionMinutes": 2.5}', 'offsetsRetentionMinutes must be a whole number, not 2.5'],
      ['{"fsync": "yes"}', 'fsync must be a boolean, not "yes"'],
      ['{"advertisedPort": 0}', 'advertisedPort must be a port, a whole number between 1 and 65535, not 0'],
      // Kafka's listener URIs: what Brook takes instead, in the file's spelling.
      ['{"listeners": "PLAINTEXT://0.0.0.0:9092"}', "unknown setting 'listeners' in FILE; Brook takes host and port (listeners) and advertisedHost and advertisedPort (advertised.listeners)"],
      ['{"advertised.listeners": "PLAINTEXT://localhost:9092"}', "unknown setting 'advertised.listeners' in FILE; Brook takes host and port (listeners) and advertisedHost and advertisedPort (advertised.listeners)"],
      ['{"offsets.topic.num.partition": 3}', "unknown setting 'offsets.topic.num.partition' in FILE; did you mean 'offsets.topic.num.partitions'?"],
      ['{"offsetsTopicPartition": 3}', "unknown setting 'offsetsTopicPartition' in FILE; did you mean 'offsetsTopicPartitions'?"],
      ['{"defualtPartitions": 3}', "unknown setting 'defualtPartitions' in FILE; did you mean 'defaultPartitions'?"],
      ['{"default_partitions": 3}', "unknown setting 'default_partitions' in FILE; did you mean 'defaultPartitions'?"],
      ['{"log.retention.hours": 24}', "unknown setting 'log.retention.hours' in FILE; use log.retention.ms (hours x 3600000)"],
      ['{"log.retention.minutes": 60}', "unknown setting 'log.retention.minutes' in FILE; use log.retention.ms (minutes x 60000)"],
      ['{"log.retention.hour": 24}', "unknown setting 'log.retention.hour' in FILE; use log.retention.ms (hours x 3600000)"],
      ['{"colour": "blue"}', "unknown setting 'colour' in FILE (`brook start --help` lists the settings: the file takes them by camelCase name, nodeId for --node-id, or by the Kafka name shown)"],
      // Names every object has (Object.prototype's): unknown like any other, not looked up on the prototype.
      ['{"__proto__": {"port": 1}}', "unknown setting '__proto__' in FILE (`brook start --help` lists the settings"],
      ['{"constructor": 1}', "unknown setting 'constructor' in FILE (`brook start --help` lists the settings"],
      ['{"toString": 1}', "unknown setting 'toString' in FILE (`brook start --help` lists the settings"],
      ['{"cacheMaxBytes": 1, "log.cache.max.bytes": 2}', 'cacheMaxBytes is given twice (as cacheMaxBytes and as its Kafka name)'],
      ['{"log.cache.max.bytes": -1}', 'log.cache.max.bytes must be between 0 and'],
      ['{"replica.lag.time.max.ms": 0}', 'replica.lag.time.max.ms must be between 1 and 2147483647, not 0'],
      ['{"controller.quorum.election.timeout.ms": 2.5}', 'controller.quorum.election.timeout.ms must be'],
      ['[1, 2]', 'must hold a JSON object of settings'],
      ['{"port": 9092,}', 'is not valid JSON: Expected double-quoted property name at line 1, column 15'],
      ['{\n  "port": 9092\n  "fsync": true\n}', "is not valid JSON: Expected ',' or '}' after property value at line 3, column 3"],
    ]
    const results = await Promise.all(cases.map(([content], i) => brook(['start', ...contained, '--config', configFile(`bad-${i}.json`, content)])))
    results.forEach((result, i) => {
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(/^brook: [^\n]+\n$/)
      expect(result.stderr.length).toBeLessThan(300)
      expect(result.stderr).toContain(cases[i]![1].replace('FILE', join(dir, `bad-${i}.json`)))
    })
    expect((await brook(['start', ...contained, '--config', join(dir, 'missing.json')])).stderr).toBe(`brook: cannot read ${join(dir, 'missing.json')}: no such file\n`)
  })

  it('takes every flag in the --config file under its camelCase name (--no-x as x: false), as the README says', async () => {
    const help = await brook(['start', '--help'])
    const keys = [...help.stdout.matchAll(/^ {2}--(?:no-)?([a-z0-9-]+)/gm)]
      .map(([, flag]) => flag!.replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase()))
      .filter((key) => key !== 'config' && key !== 'help')
    expect(keys).toContain('logRetentionCheckIntervalMs')
    expect(keys).toContain('autoLeaderRebalance')
    // A value of no setting's type: the file's check names the setting it took, where an unknown one is refused as such.
    // The check `brook start --config` runs, in this process: the test above shows how the command reports its error.
    for (const key of keys) {
      expect(() => readConfigFile(configFile(`${key}.json`, JSON.stringify({ [key]: {} }))), key).toThrow(new RegExp(`^[^\\n]+: ${key} must be [^\\n]+$`))
    }
  })

  it('takes every Kafka name that --help and the README give for a setting in the --config file', async () => {
    const help = (await brook(['start', '--help'])).stdout.replace(/\s+/g, ' ')
    // --help opens a description with the Kafka name: `num.partitions: partitions of ...`, `auto.create.topics.enable=false: ...`.
    const fromHelp = [...help.matchAll(/ ([a-z]+(?:\.[a-z0-9]+)+)(?:=false)?: /g)].map(([, name]) => name!)
    // The README's Broker section puts it first in a flag's parentheses: `--default-partitions n (num.partitions, 1)`.
    const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')
    const broker = readme.slice(readme.indexOf('### Broker'), readme.indexOf('### Cluster'))
    const fromReadme = [...broker.matchAll(/\(`?([a-z]+(?:\.[a-z0-9]+)+)(?:=false)?`?[,)]/g)].map(([, name]) => name!)
    const names = [...new Set([...fromHelp, ...fromReadme])]
    for (const name of ['num.partitions', 'log.cache.max.bytes', 'controller.quorum.voters', 'auto.leader.rebalance.enable', 'log.record.validation.enable', 'auto.create.topics.enable']) {
      expect(names).toContain(name)
    }
    expect(fromReadme.length).toBeGreaterThan(10)
    // A value of no setting's type: the file's check names the setting it took, where an unknown one is refused as such
    // (in this process, as above).
    for (const name of names) {
      expect(() => readConfigFile(configFile(`${name}.json`, JSON.stringify({ [name]: {} }))), name).toThrow(new RegExp(`^[^\\n]+: ${name.replaceAll('.', '\\.')} must be [^\\n]+$`))
    }
  })

  it('says so in one line when the data directory, or a parent of it, is a file', async () => {
    const file = configFile('a-file', 'not a directory\n')
    const itself = await brook(['start', '--port', '0', '--data-dir', file])
    expect(itself.code).toBe(1)
    expect(itself.stderr).toBe(`brook: the data directory ${file} is a file, not a directory\n`)
    const below = await brook(['start', '--port', '0', '--data-dir', join(file, 'node-1')])
    expect(below.code).toBe(1)
    expect(below.stderr).toBe(`brook: cannot use the data directory ${join(file, 'node-1')}: ${file} is a file, not a directory\n`)
  })

  describe('--advertised-port: a node behind a port forward (Kafka\'s advertised.listeners port)', () => {
    it('names the forward\'s port in Metadata, FindCoordinator and advertised.listeners, and listens on --port (kafkajs through the forward)', async () => {
      const forward = await portForward()
      const node = await startBroker({ args: ['--advertised-port', String(forward.port)] })
      forward.target(node.port)
      const kafka = new Kafka({ brokers: [`127.0.0.1:${forward.port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
      const admin = kafka.admin()
      const producer = kafka.producer({ retry: { retries: 0 } })
      try {
        expect(node.port).not.toBe(forward.port)
        await admin.connect()
        await producer.connect()
        // Metadata: the node as clients reach it, through the forward.
        expect((await admin.describeCluster()).brokers).toEqual([{ nodeId: 1, host: '127.0.0.1', port: forward.port }])
        await admin.createTopics({ topics: [{ topic: 'forwarded' }] })
        await producer.send({ topic: 'forwarded', messages: [{ value: 'through the forward' }] })
        // FindCoordinator, then OffsetFetch at the coordinator it names.
        expect(await admin.fetchOffsets({ groupId: 'forwarded-group', topics: ['forwarded'] })).toEqual([{ topic: 'forwarded', partitions: [{ partition: 0, offset: '-1', metadata: null }] }])
        const [resource] = (await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '1' }], includeSynonyms: false })).resources
        const configs = new Map(resource!.configEntries.map((e) => [e.configName, e.configValue]))
        expect(configs.get('listeners')).toBe(`PLAINTEXT://127.0.0.1:${node.port}`)
        expect(configs.get('advertised.listeners')).toBe(`PLAINTEXT://127.0.0.1:${forward.port}`)
        expect(forward.connections()).toBeGreaterThan(1)
      } finally {
        await producer.disconnect()
        await admin.disconnect()
        await forward.close()
        await node.stop()
        node.cleanup()
      }
    })

    it('registers a cluster node at the controller with the advertisedPort of its --config file: the port DescribeCluster and Metadata give', async () => {
      const forward = await portForward()
      const [controllerPort] = await freePorts(1)
      const file = configFile('advertised-port.json', JSON.stringify({ advertisedPort: forward.port }))
      const node = await startBroker({ args: ['--config', file, '--cluster-id', newClusterId(), '--controller-quorum-voters', `1@127.0.0.1:${controllerPort}`] })
      forward.target(node.port)
      const admin = new Kafka({ brokers: [`127.0.0.1:${forward.port}`], logLevel: logLevel.NOTHING }).admin()
      try {
        await admin.connect()
        // A cluster node's Metadata lists the brokers of its metadata image: each as registered at the controller.
        expect((await admin.describeCluster()).brokers).toEqual([{ nodeId: 1, host: '127.0.0.1', port: forward.port }])
      } finally {
        await admin.disconnect()
        await forward.close()
        await node.stop()
        node.cleanup()
      }
    })
  })

  it('names the setting when the node cannot listen on its host: an address not of this machine, a name that does not resolve', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737), no machine's address; .invalid never resolves (RFC 2606).
    expectOneLineError(await brook(['start', ...contained, '--host', '192.0.2.1']), 'brook: --host: cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL)')
    expectOneLineError(await brook(['start', ...contained, '--host', 'nosuch.invalid']), 'brook: --host: cannot listen on nosuch.invalid:0: the name nosuch.invalid does not resolve (getaddrinfo ')
    // A voter's: the node opens its data and its quorum member first, which log a line.
    const voter = await brook(['start', ...contained, '--cluster-id', newClusterId(), '--controller-quorum-voters', '1@192.0.2.1:19197'])
    expect(voter.code).toBe(1)
    expect(lines(voter.stderr).at(-1)).toBe("brook: controller.quorum.voters (node 1's controller listener): cannot listen on 192.0.2.1:19197: 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL)")
    expect(voter.stderr).not.toMatch(/\n\s+at /)
  })

  it('says which address a host name given as --host was bound to (localhost may be ::1 only, where /etc/hosts lists it first)', async () => {
    const node = await startBroker({ host: 'localhost' })
    try {
      expect(node.output()).toMatch(new RegExp(`listening on localhost:${node.port} \\(bound to (127\\.0\\.0\\.1|::1), cluster `))
    } finally {
      await node.stop()
      node.cleanup()
    }
  })

  describe('IPv6 hosts in brackets (Kafka\'s Utils.getHost and QuorumConfig.parseVoterConnections strip them)', () => {
    it('listens on --host [::], tells clients --advertised-host [::1] as ::1, and writes both [::1]:port in its output and listeners (kafkajs)', async () => {
      const node = await startBroker({ host: '[::]', args: ['--advertised-host', '[::1]'] })
      // Bootstrapped over IPv4 (the node listens on every interface); Metadata then sends kafkajs to ::1.
      const kafka = new Kafka({ brokers: [`127.0.0.1:${node.port}`], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
      const admin = kafka.admin()
      const producer = kafka.producer({ retry: { retries: 0 } })
      try {
        expect(node.output()).toMatch(new RegExp(`listening on \\[::\\]:${node.port} \\(`))
        await admin.connect()
        expect((await admin.describeCluster()).brokers).toEqual([{ nodeId: 1, host: '::1', port: node.port }])
        await producer.connect()
        await admin.createTopics({ topics: [{ topic: 'six' }] })
        await producer.send({ topic: 'six', messages: [{ value: 'over ::1' }] })
        const [resource] = (await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '1' }], includeSynonyms: false })).resources
        const configs = new Map(resource!.configEntries.map((e) => [e.configName, e.configValue]))
        expect(configs.get('listeners')).toBe(`PLAINTEXT://[::]:${node.port}`)
        expect(configs.get('advertised.listeners')).toBe(`PLAINTEXT://[::1]:${node.port}`)
      } finally {
        await producer.disconnect()
        await admin.disconnect()
        await node.stop()
        node.cleanup()
      }
    })

    it('takes a voter 1@[::1]:port, and a connect error names [::1]:port', async () => {
      const [controllerPort, closedPort] = await freePorts(2)
      const node = await startBroker({ host: '::1', args: ['--cluster-id', newClusterId(), '--controller-quorum-voters', `1@[::1]:${controllerPort}`] })
      try {
        expect(node.output()).toMatch(new RegExp(`listening on \\[::1\\]:${node.port} \\(controller listener \\[::1\\]:${controllerPort}, `))
        const topics = await brook(['topics', 'create', 'six', '--bootstrap-server', `[::1]:${node.port}`])
        expect(topics).toMatchObject({ code: 0 })
      } finally {
        await node.stop()
        node.cleanup()
      }
      expectOneLineError(await brook(['topics', 'list', '--bootstrap-server', `[::1]:${closedPort}`]), `cannot connect to a broker at [::1]:${closedPort}: ECONNREFUSED`)
      expectOneLineError(await brook(['start', ...contained, '--controller-quorum-voters', `1@[::1]:${closedPort},2@::1:${closedPort}`]), `controller.quorum.voters names [::1]:${closedPort} twice`)
    })
  })

  describe('settings that take effect', () => {
    let broker: BrokerProcess
    afterAll(async () => {
      await broker?.stop()
      broker?.cleanup()
    })

    it('creates __consumer_offsets with --offsets-topic-partitions (a flag beats the file) and applies message.max.bytes from the file', async () => {
      // A setting's Kafka name works in the file as its BrokerConfig name does.
      const file = configFile('broker.json', JSON.stringify({ offsetsTopicPartitions: 7, 'message.max.bytes': 300, groupInitialRebalanceDelayMs: 0 }))
      broker = await startBroker({ args: ['--config', file, '--offsets-topic-partitions', '3'] })
      const server = ['--bootstrap-server', broker.address]

      // Looking up a group's coordinator creates __consumer_offsets.
      expect(await brook(['groups', 'describe', 'anyone', ...server])).toMatchObject({ code: 1, stderr: "brook: consumer group 'anyone' does not exist\n" })
      const offsetsTopic = await brook(['topics', 'describe', '__consumer_offsets', ...server])
      expect(lines(offsetsTopic.stdout)[0]).toContain('PartitionCount: 3')

      expect((await brook(['topics', 'create', 'small', ...server])).code).toBe(0)
      const tooLarge = await brook(['produce', 'small', ...server], { input: 'x'.repeat(500) + '\n' })
      expect(tooLarge.code).toBe(1)
      expect(tooLarge.stderr).toMatch(/^brook: cannot produce to small-0: MESSAGE_TOO_LARGE /)
      // The broker's message.max.bytes is the topic's default, not a config set on it: describe leaves it out.
      expect(lines((await brook(['topics', 'describe', 'small', ...server])).stdout)[0]).toMatch(/\tConfigs: $/)
    })

    it('takes the broker defaults of topic configs from the file under Kafka\'s names (log.message.timestamp.type, log.cleanup.policy) and acts on them', async () => {
      const file = configFile('topic-defaults.json', JSON.stringify({ 'log.message.timestamp.type': 'LogAppendTime', 'log.cleanup.policy': 'compact' }))
      const node = await startBroker({ args: ['--config', file] })
      const kafka = new Kafka({ brokers: [node.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
      const admin = kafka.admin()
      const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } })
      try {
        await admin.connect()
        await producer.connect()
        await admin.createTopics({ topics: [{ topic: 'stamped' }] })
        const [topic] = (await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: 'stamped' }], includeSynonyms: false })).resources
        const configs = new Map(topic!.configEntries.map((e) => [e.configName, { value: e.configValue, source: (e as { configSource?: number }).configSource }]))
        expect(configs.get('message.timestamp.type')).toEqual({ value: 'LogAppendTime', source: STATIC_BROKER_CONFIG })
        expect(configs.get('cleanup.policy')).toEqual({ value: 'compact', source: STATIC_BROKER_CONFIG })
        const [brokerResource] = (await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '1' }], includeSynonyms: false })).resources
        const brokerConfigs = new Map(brokerResource!.configEntries.map((e) => [e.configName, { value: e.configValue, source: (e as { configSource?: number }).configSource }]))
        expect(brokerConfigs.get('log.message.timestamp.type')).toEqual({ value: 'LogAppendTime', source: STATIC_BROKER_CONFIG })

        // LogAppendTime: the node stamps the batch and says so in the answer, whatever the producer's timestamp.
        const sentAt = Date.now()
        const [written] = await producer.send({ topic: 'stamped', messages: [{ key: 'k', value: 'v', timestamp: '1000' }] })
        expect(Number(written!.logAppendTime)).toBeGreaterThanOrEqual(sentAt - 1000)
        // Compacted: a record without a key is refused (Kafka's "Compacted topic cannot accept message without key").
        const keyless = await producer.send({ topic: 'stamped', messages: [{ value: 'no key' }] }).catch((error: Error) => error)
        expect(keyless).toMatchObject({ type: 'INVALID_RECORD' })
        // A topic's own setting wins over the node's.
        await admin.createTopics({ topics: [{ topic: 'created-time', configEntries: [{ name: 'message.timestamp.type', value: 'CreateTime' }, { name: 'cleanup.policy', value: 'delete' }] }] })
        const [own] = await producer.send({ topic: 'created-time', messages: [{ value: 'v', timestamp: '1000' }] })
        expect(own!.logAppendTime).toBe('-1')
      } finally {
        await producer.disconnect()
        await admin.disconnect()
        await node.stop()
        node.cleanup()
      }
    })
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brook, expectOneLineError } from './run-brook.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'

/** A port nothing listens on: bound by the OS, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

describe('brook command-line errors', () => {
  let unreachable: string
  beforeAll(async () => {
    unreachable = `127.0.0.1:${await closedPort()}`
  })

  it('says it cannot connect, for every command, with exit code 1', async () => {
    const commands = [
      ['topics', 'create', 't'],
      ['topics', 'list'],
      ['topics', 'describe'],
      ['topics', 'delete', 't'],
      ['topics', 'alter-config', 't', '--set', 'retention.ms=1'],
      ['topics', 'add-partitions', 't', '--partitions', '2'],
      ['produce', 't'],
      ['consume', 't'],
      ['consume', 't', '--group', 'g'],
      ['groups', 'list'],
      ['groups', 'describe', 'g'],
      ['groups', 'delete', 'g'],
      ['groups', 'reset-offsets', 'g', '--all-topics', '--to-earliest'],
    ]
    const results = await Promise.all(commands.map((args) => brook([...args, '--bootstrap-server', unreachable], { input: 'x\n' })))
    for (const result of results) {
      expect(result.code).toBe(1)
      expect(result.stderr).toBe(`brook: cannot connect to a broker at ${unreachable}: ECONNREFUSED\n`)
    }
  })

  /**
   * Servers that are not Kafka, started here (they are what is under test, not stand-ins for a broker): the command
   * must say so at once in one line, not read `HTTP` as a 1.2 GB size and wait out its 30 s request timeout. Each test
   * has servers of its own, so they run side by side: most of their time is kafkajs giving up.
   */
  describe('a server that is not Kafka', { concurrent: true }, () => {
    const servers: Server[] = []
    const sockets: Socket[] = []
    const listen = async (server: Server): Promise<string> => {
      servers.push(server)
      server.on('connection', (socket: Socket) => {
        sockets.push(socket)
        socket.on('error', () => {})
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      return `127.0.0.1:${(server.address() as { port: number }).port}`
    }
    afterAll(async () => {
      for (const socket of sockets) socket.destroy()
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
    })

    it('says the server did not answer as a Kafka broker, quoting what it sent, and exits 1 at once', async () => {
      // node:http answers a request it cannot parse with 400 and closes the connection.
      const http = await listen(createHttpServer((_, response) => response.end()))
      // An HTTP server that keeps the connection open after its answer, as on keep-alive: the one that made a
      // command wait for its whole request timeout.
      const keepAlive = await listen(createServer((socket) => socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'))))
      // A server that echoes: a frame of sane size whose correlation id (the request's API key and version) answers
      // no request.
      const echo = await listen(createServer((socket) => socket.pipe(socket)))
      const [fromHttp, fromKeepAlive, fromEcho] = await Promise.all([http, keepAlive, echo].map((server) => brook(['topics', 'list', '--bootstrap-server', server])))
      for (const [result, server] of [[fromHttp, http], [fromKeepAlive, keepAlive]] as const) {
        expectOneLineError(result!, `the server at ${server} did not answer as a Kafka broker: its answer began with 'HTTP/1.1 400 Bad Request', which read as a Kafka response would be 1213486160 bytes long`)
      }
      // The request came back: its size, then ApiVersions' API key and version (18 and 3) where a correlation id goes.
      expectOneLineError(fromEcho!, `the server at ${echo} did not answer as a Kafka broker: its answer began with bytes 00 00 00 `)
      expect(fromEcho!.stderr).toMatch(/bytes 00 00 00 [0-9a-f]{2} 00 12 00 03 [0-9a-f ]+, an answer to no request sent \(correlation id 1179651\)\n$/)
    })

    it('says so from simulate and process too, whose kafkajs clients read the answer as a 1.2 GB response', async () => {
      const http = await listen(createHttpServer((_, response) => response.end()))
      const stateDir = mkdtempSync(join(tmpdir(), 'brook-state-'))
      try {
        const [simulated, processed] = await Promise.all([
          brook(['simulate', '--count', '1', '--bootstrap-server', http]),
          brook(['process', 'iot', '--bootstrap-server', http, '--state-dir', stateDir]),
        ])
        for (const result of [simulated, processed]) {
          expectOneLineError(result, `the server at ${http} did not answer as a Kafka broker: its answer began with 'HTTP/1.1 400 Bad Request'`)
        }
      } finally {
        rmSync(stateDir, { recursive: true, force: true })
      }
    })

    it('names TLS on one side only, from simulate and process: a TLS listener asked in plaintext, and ssl against a plaintext listener', async () => {
      // What a TLS listener sends to a request that is not a ClientHello: a fatal alert record (protocol_version).
      const tls = await listen(createServer((socket) => socket.once('data', () => socket.end(Buffer.from('15030300020246', 'hex')))))
      // A plaintext listener reads a ClientHello as a request of some 369 MB and closes the connection, as Brook's does.
      const plaintext = await listen(createServer((socket) => socket.once('data', () => socket.destroy())))
      const dir = mkdtempSync(join(tmpdir(), 'brook-tls-'))
      try {
        const settings = join(dir, 'kafka.json')
        writeFileSync(settings, JSON.stringify({ ssl: true }))
        const [simulated, processed, withSsl] = await Promise.all([
          brook(['simulate', '--count', '1', '--bootstrap-server', tls]),
          brook(['process', 'iot', '--bootstrap-server', tls, '--state-dir', join(dir, 'state')]),
          brook(['simulate', '--count', '1', '--bootstrap-server', plaintext, '--kafka-config', settings]),
        ])
        for (const result of [simulated, processed]) {
          expectOneLineError(result, `the server at ${tls} answered with TLS (bytes 15030300): it is a TLS listener; set ssl in the kafkajs settings (--kafka-config)`)
        }
        expectOneLineError(withSsl, `${plaintext} closed the connection during the TLS handshake: it is not a TLS listener (a PLAINTEXT one, as Brook's are?)`)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    it('names a server that accepts connections and never answers (a node paused or hung), from simulate and process, where kafkajs says only that a request timed out', async () => {
      const silent = await listen(createServer(() => {}))
      const dir = mkdtempSync(join(tmpdir(), 'brook-silent-'))
      try {
        // kafkajs's timeouts shortened, so that it gives up in seconds rather than after 30 s and its retries.
        const settings = join(dir, 'kafka.json')
        writeFileSync(settings, JSON.stringify({ connectionTimeout: 1000, requestTimeout: 2000, retry: { retries: 0 } }))
        const [simulated, processed] = await Promise.all([
          brook(['simulate', '--count', '1', '--bootstrap-server', silent, '--kafka-config', settings]),
          brook(['process', 'iot', '--bootstrap-server', silent, '--state-dir', join(dir, 'state'), '--kafka-config', settings]),
        ])
        for (const result of [simulated, processed]) {
          expectOneLineError(result, '')
          expect(result.stderr).toContain(`; ${silent} accepted the connection but did not answer ApiVersions within 5 s: it is not a Kafka listener, a node paused or hung`)
        }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })

    it('says a server that closes the connection at once did not answer ApiVersions', async () => {
      const closing = await listen(createServer((socket) => socket.end()))
      expectOneLineError(await brook(['topics', 'list', '--bootstrap-server', closing]), `connection to ${closing} closed before ApiVersions was answered: it is not a Kafka listener`)
    })
  })

  it('uses BROOK_BOOTSTRAP_SERVER, and names the default server when there is none', async () => {
    const fromEnv = await brook(['topics', 'list'], { env: { BROOK_BOOTSTRAP_SERVER: unreachable } })
    expect(fromEnv.stderr).toContain(`cannot connect to a broker at ${unreachable}`)
    // A bad value there is the variable's, not a --bootstrap-server the user never typed.
    const badEnv = await brook(['topics', 'list'], { env: { BROOK_BOOTSTRAP_SERVER: 'no-port' } })
    expect(badEnv.code).toBe(1)
    expect(badEnv.stderr).toBe("brook: option '--bootstrap-server <host:port>' value 'no-port' from env 'BROOK_BOOTSTRAP_SERVER' is invalid. 'no-port' is not host:port\n")
    const help = await brook(['topics', 'list', '--help'])
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('(default: "localhost:9092", env: BROOK_BOOTSTRAP_SERVER)')
  })

  // Arguments are checked before anything connects, so these need no broker and run side by side.
  it.concurrent.for([
    [['topics', 'create', 't', '--partitions', 'three'], /--partitions must be a whole number/],
    [['topics', 'create', 't', '--partitions', '0'], /--partitions must be between 1 and/],
    [['topics', 'create', 't', '--config', 'retention.ms'], /--config takes key=value, not 'retention.ms'/],
    [['topics', 'create'], /missing required argument 'name'/],
    [['produce'], /missing required argument 'topic'/],
    [['produce', 't', '--acks', '2'], /'--acks <acks>' argument '2' is invalid/],
    [['produce', 't', '--compression', 'brotli'], /'--compression <codec>' argument 'brotli' is invalid/],
    [['produce', 't', '--header', '=v'], /--header takes key=value/],
    [['produce', 't', '--file', '/no/such/file'], /^brook: cannot read \/no\/such\/file: no such file\n$/],
    [['produce', 't', '--file', '/tmp'], /^brook: cannot read \/tmp: it is a directory\n$/],
    [['consume', 't', '--offset', '-3'], /--offset takes a non-negative offset, earliest or latest/],
    [['consume', 't', '--from-timestamp', 'yesterday'], /--from-timestamp takes milliseconds since the epoch or an ISO 8601 date/],
    [['consume', 't', '--from-beginning', '--offset', '5'], /'--from-beginning' cannot be used with option '--offset/],
    [['consume', 't', '--max-messages', '1.5'], /--max-messages must be a whole number/],
    [['consume', 't', '--isolation-level', 'serializable'], /'--isolation-level <level>' argument 'serializable' is invalid/],
    [['consume', 't', '--group', 'g', '--partition', '1'], /'--group <id>' cannot be used with option '--partition/],
    [['topics', 'alter-config', 't'], /give at least one --set key=value or --delete key/],
    [['topics', 'alter-config', 't', '--set', 'retention.ms'], /--set takes key=value, not 'retention.ms'/],
    [['topics', 'alter-config', 't', '--set', 'retention.ms=1', '--delete', 'retention.ms'], /config 'retention.ms' is named more than once/],
    [['topics', 'alter-config', 't', '--delete', 'retention.msec'], /unknown topic config 'retention.msec'/],
    [['groups', 'list', '--state', 'sleeping'], /--state takes Stable, PreparingRebalance, CompletingRebalance, Empty, Dead, not 'sleeping'/],
    [['groups', 'describe', 'g', '--members', '--state'], /'--members' cannot be used with option '--state'/],
    [['groups', 'reset-offsets', 'g', '--topic', 't'], /give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by/],
    [['groups', 'reset-offsets', 'g', '--topic', 't', '--to-earliest', '--to-latest'], /give exactly one of/],
    [['groups', 'reset-offsets', 'g', '--to-earliest'], /give --topic <topic> \(repeatable\) or --all-topics/],
    [['groups', 'reset-offsets', 'g', '--topic', 't', '--all-topics', '--to-earliest'], /'--topic <topic\[:partitions\]>' cannot be used with option '--all-topics'/],
    [['groups', 'reset-offsets', 'g', '--topic', 't:x', '--to-earliest'], /--topic takes topic or topic:partition,partition..., not 't:x'/],
    [['groups', 'reset-offsets', 'g', '--all-topics', '--to-offset', '-1'], /--to-offset takes a non-negative offset/],
    [['groups', 'reset-offsets', 'g', '--all-topics', '--shift-by', 'back'], /--shift-by takes a whole number/],
    [['groups', 'reset-offsets', 'g', '--all-topics', '--to-datetime', 'noon'], /--to-datetime takes milliseconds since the epoch or an ISO 8601 date/],
    [['groups', 'reset-offsets', 'g', '--all-topics', '--to-earliest', '--dry-run', '--execute'], /'--dry-run' cannot be used with option '--execute'/],
    [['topics', 'list', '--bootstrap-server', 'no-port'], /'--bootstrap-server <host:port>' argument 'no-port' is invalid. 'no-port' is not host:port/],
    [['topics', 'frobnicate'], /unknown command 'frobnicate'/],
    // The built-in pipeline misspelled is not taken for a module file that is missing.
    [['process', 'iott'], /^brook: 'iott' is neither the built-in 'iot' pipeline nor a file: give 'iot', or a \.js\/\.ts module/],
    // commander's hint, on the error's line.
    [['topcs', 'list'], /^brook: unknown command 'topcs' \(did you mean topics\?\)\n$/],
    [['topics', 'log-dirs', '--jsn'], /^brook: unknown option '--jsn' \(did you mean --json\?\)\n$/],
    [['cluster', 'unregister'], /required option '--id <n>' not specified/],
    [['cluster', 'unregister', '--id', 'two'], /--id must be a whole number/],
    [['cluster', 'unregister', '--id', '-1'], /--id must be between 0 and 2147483647/],
  ] as const)('rejects %j in one line with exit code 1', async ([args, message], { expect }) => {
    const result = await brook(args)
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/^brook: [^\n]+\n$/)
    expect(result.stderr).toMatch(message)
  })

  it('has --help on every command', async () => {
    const commands = [
      [], ['start'], ['topics'], ['topics', 'create'], ['topics', 'list'], ['topics', 'describe'], ['topics', 'delete'], ['topics', 'alter-config'], ['topics', 'add-partitions'],
      ['produce'], ['consume'], ['groups'], ['groups', 'list'], ['groups', 'describe'], ['groups', 'delete'], ['groups', 'reset-offsets'],
    ]
    const results = await Promise.all(commands.map((args) => brook([...args, '--help'])))
    results.forEach((result, i) => {
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(new RegExp(`^Usage: brook ${commands[i]!.join(' ')}`.trimEnd()))
    })
  })

  it('--version prints the version of package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
    expect(await brook(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' })
  })
})

describe('a node that advertises an address the command cannot reach', () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    // Nothing listens on 127.0.0.99: the node answers at its own address, and tells clients to come to another.
    broker = await startBroker({ args: ['--advertised-host', '127.0.0.99'] })
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  it('says so at once in one line, naming both addresses, instead of waiting for a controller to fence it', async () => {
    const advertised = `127.0.0.99:${broker.port}`
    for (const [args, what] of [
      [['groups', 'list'], 'cannot list groups'],
      [['transactions', 'list'], 'cannot list transactions'],
    ] as const) {
      const result = await brook([...args, '--bootstrap-server', broker.address])
      expectOneLineError(result, `${what}: node 1 answers at ${broker.address} but not at the address it advertises to clients (cannot connect to a broker at ${advertised}: ECONNREFUSED): its advertised host and port must be reachable from here`)
      expect(result.stderr).not.toContain('fences')
    }
  })
})

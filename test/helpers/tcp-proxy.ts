/**
 * A small TCP proxy between a client and a broker that reads the Kafka framing as it forwards, so a test can lose an
 * answer on the way back: `dropNextAnswer(apiKey)` makes the proxy swallow the next response to a request of that API
 * (or of those requests of it a predicate picks) (the broker has done the work and written its answer; the client never reads it) and close both connections, which
 * is the ambiguous failure an idempotent producer's retry must survive. `hide(apiKey)` takes the API out of the
 * broker's ApiVersions answers and closes a client's connection at each request of it without forwarding it (what a
 * Kafka broker does with a request for an API it does not have), so the broker looks like one from before that API
 * (from before transactions, for InitProducerId).
 * `outageAt(apiKey, { downMs })` makes the proxy go down at the next request of that API, as a node killed there and
 * back `downMs` later: every connection closed, new ones refused (ECONNREFUSED) until then.
 *
 *   client ──> proxy (listenHost:port) ──> broker (targetHost:port)
 *                 requests:  size | apiKey | apiVersion | correlationId ...   (correlationId -> apiKey, apiVersion noted)
 *                 responses: size | correlationId ...                          (forwarded, ApiVersions without hidden
 *                                                                               APIs, or swallowed once armed)
 *
 * Clients connect to the address Metadata advertises, so the broker must advertise the proxy: run the broker on
 * another loopback address with `--advertised-host <proxy host>` and the proxy on the advertised host with the
 * broker's port (`startProxy({ listenHost: '127.0.0.1', targetHost: '127.0.0.2', port })`).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import type { BrokerConfig } from '../../broker/config.js'
import { startConfiguredBroker } from './broker-config.js'
import type { BrokerProcess } from './broker.js'

export interface ProxyOptions {
  listenHost: string
  targetHost: string
  /** The same port on both sides: the broker's, which Metadata advertises. */
  port: number
}

export interface TcpProxy {
  /** Requests forwarded, by API key (retries show up as a second request). */
  readonly requests: Map<number, number>
  /** Answers swallowed so far. */
  readonly dropped: number
  /**
   * Swallows the next response to a request of `apiKey` (of those whose whole request frame `matches`, if given) and
   * closes that client's connections.
   */
  dropNextAnswer(apiKey: number, matches?: (request: Buffer) => boolean): void
  /**
   * From now on, leaves `apiKey` out of ApiVersions answers and closes a client's connections at each request of it,
   * which never reaches the broker.
   */
  hide(apiKey: number): void
  /** At the next request of `apiKey`, closes every connection and refuses new ones for `downMs`. */
  outageAt(apiKey: number, options: { downMs: number }): void
  /** Outages so far (each one over or under way). */
  readonly outages: number
  close(): Promise<void>
}

/**
 * For `dropNextAnswer(findCoordinator.request.apiKey, asksForGroup(id))`: whether a FindCoordinator request frame asks
 * for group `groupId` (its key, a length-prefixed string, is the group id).
 */
export function asksForGroup(groupId: string): (request: Buffer) => boolean {
  const length = Buffer.alloc(2)
  length.writeInt16BE(groupId.length)
  const key = Buffer.concat([length, Buffer.from(groupId)])
  return (request) => request.includes(key)
}

/** Splits a byte stream into size-prefixed frames, calling `onFrame` with each whole frame (size prefix included). */
function framer(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 4) {
      const size = 4 + pending.readInt32BE(0)
      if (pending.length < size) return
      onFrame(pending.subarray(0, size))
      pending = pending.subarray(size)
    }
  }
}

/** ApiVersions' API key (ApiVersionsRequest.json). */
const API_VERSIONS_API_KEY = 18

function readUvarint(buffer: Buffer, at: number): [value: number, next: number] {
  let value = 0
  for (let shift = 0; ; shift += 7) {
    const byte = buffer[at++]!
    value += (byte & 0x7f) * 2 ** shift
    if (byte < 0x80) return [value, at]
  }
}

function uvarint(value: number): Buffer {
  const bytes: number[] = []
  for (; value >= 0x80; value = Math.floor(value / 128)) bytes.push((value & 0x7f) | 0x80)
  bytes.push(value)
  return Buffer.from(bytes)
}

/**
 * An ApiVersions response frame without the entries of `hidden` API keys (ApiVersionsResponse.json: ErrorCode, then
 * ApiKeys — an int32-counted array in v0-2; from v3, flexible, a compact array whose entries end in tagged fields —
 * then what follows, copied as it is). Its header is v0 in every version (KIP-511), the correlation id alone.
 */
function withoutApis(frame: Buffer, version: number, hidden: ReadonlySet<number>): Buffer {
  const errorCodeAt = 8
  if (frame.readInt16BE(errorCodeAt) !== 0) return frame
  const flexible = version >= 3
  let at = errorCodeAt + 2
  let count: number
  if (flexible) {
    ;[count, at] = readUvarint(frame, at)
    count -= 1
  } else {
    count = frame.readInt32BE(at)
    at += 4
  }
  const kept: Buffer[] = []
  for (let i = 0; i < count; i++) {
    const start = at
    const apiKey = frame.readInt16BE(at)
    at += 6
    if (flexible) {
      let tags: number
      ;[tags, at] = readUvarint(frame, at)
      for (let t = 0; t < tags; t++) {
        let size: number
        ;[, at] = readUvarint(frame, at)
        ;[size, at] = readUvarint(frame, at)
        at += size
      }
    }
    if (!hidden.has(apiKey)) kept.push(frame.subarray(start, at))
  }
  const countBytes = flexible ? uvarint(kept.length + 1) : Buffer.alloc(4)
  if (!flexible) countBytes.writeInt32BE(kept.length)
  const body = Buffer.concat([frame.subarray(4, errorCodeAt + 2), countBytes, ...kept, frame.subarray(at)])
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length)
  return Buffer.concat([size, body])
}

export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const requests = new Map<number, number>()
  let armed: { apiKey: number; matches: (request: Buffer) => boolean } | null = null
  let dropped = 0
  const hidden = new Set<number>()
  let outage: { apiKey: number; downMs: number } | null = null
  let outages = 0
  let relisten: NodeJS.Timeout | undefined
  const listen = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject).listen(options.port, options.listenHost, () => {
        server.off('error', reject)
        resolve()
      })
    })
  const goDown = (downMs: number): void => {
    outages++
    server.close()
    for (const socket of sockets) socket.destroy()
    // A port taken meanwhile leaves the proxy down: the test then fails on what its clients could not reach.
    relisten = setTimeout(() => void listen().catch(() => {}), downMs)
  }
  const server: Server = createServer((client) => {
    const upstream = connect({ host: options.targetHost, port: options.port })
    sockets.add(client).add(upstream)
    const requestsInFlight = new Map<number, { apiKey: number; apiVersion: number; picked: boolean }>()
    const closeBoth = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('close', () => {
      sockets.delete(client)
      upstream.destroy()
    })
    upstream.on('close', () => {
      sockets.delete(upstream)
      client.destroy()
    })
    client.on('error', closeBoth)
    upstream.on('error', closeBoth)
    client.on(
      'data',
      framer((frame) => {
        const apiKey = frame.readInt16BE(4)
        requests.set(apiKey, (requests.get(apiKey) ?? 0) + 1)
        if (outage !== null && apiKey === outage.apiKey) {
          const { downMs } = outage
          outage = null
          goDown(downMs)
          return
        }
        if (hidden.has(apiKey)) {
          closeBoth()
          return
        }
        requestsInFlight.set(frame.readInt32BE(8), { apiKey, apiVersion: frame.readInt16BE(6), picked: armed !== null && apiKey === armed.apiKey && armed.matches(frame) })
        upstream.write(frame)
      }),
    )
    upstream.on(
      'data',
      framer((frame) => {
        const correlationId = frame.readInt32BE(4)
        const request = requestsInFlight.get(correlationId)
        requestsInFlight.delete(correlationId)
        if (armed !== null && request?.picked === true) {
          armed = null
          dropped++
          closeBoth()
          return
        }
        client.write(request?.apiKey === API_VERSIONS_API_KEY && hidden.size > 0 ? withoutApis(frame, request.apiVersion, hidden) : frame)
      }),
    )
  })
  await listen()
  return {
    requests,
    get dropped() {
      return dropped
    },
    dropNextAnswer(apiKey, matches = () => true) {
      armed = { apiKey, matches }
    },
    hide(apiKey) {
      hidden.add(apiKey)
    },
    outageAt(apiKey, { downMs }) {
      outage = { apiKey, downMs }
    },
    get outages() {
      return outages
    },
    async close() {
      clearTimeout(relisten)
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A broker behind a proxy (brokerBehindProxy): clients use `address`, the proxy's. */
export interface ProxiedBroker {
  readonly broker: BrokerProcess
  readonly proxy: TcpProxy
  /** `127.0.0.1:<port>`: where the proxy listens, and what the broker advertises. */
  readonly address: string
  /** Closes the proxy, kills the broker and removes its data. */
  close(): Promise<void>
}

/**
 * A broker started with `config` on 127.0.0.2, advertising 127.0.0.1, where a proxy listens with the same port: every
 * client connection, including those Metadata sends clients to, goes through the proxy.
 */
export async function brokerBehindProxy(config: Partial<BrokerConfig>): Promise<ProxiedBroker> {
  const broker = await startConfiguredBroker(config, { args: ['--host', '127.0.0.2', '--advertised-host', '127.0.0.1'] })
  const proxy = await startProxy({ listenHost: '127.0.0.1', targetHost: '127.0.0.2', port: broker.port }).catch(async (error: unknown) => {
    await broker.kill()
    broker.cleanup()
    throw error
  })
  return {
    broker,
    proxy,
    address: `127.0.0.1:${broker.port}`,
    async close() {
      await proxy.close()
      await broker.kill()
      broker.cleanup()
    },
  }
}

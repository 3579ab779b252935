/**
 * A small TCP proxy between a client and a broker that reads the Kafka framing as it forwards, so a test can lose an
 * answer on the way back: `dropNextAnswer(apiKey)` makes the proxy swallow the next response to a request of that API
 * (the broker has done the work and written its answer; the client never reads it) and close both connections, which
 * is the ambiguous failure an idempotent producer's retry must survive. `refuse(apiKey)` makes it close a client's
 * connection at each request of that API without forwarding it, as a Kafka broker does with a request for an API it
 * does not have (one from before transactions, for InitProducerId).
 *
 *   client ──> proxy (listenHost:port) ──> broker (targetHost:port)
 *                 requests:  size | apiKey | apiVersion | correlationId ...   (correlationId -> apiKey noted)
 *                 responses: size | correlationId ...                          (forwarded, or swallowed once armed)
 *
 * Clients connect to the address Metadata advertises, so the broker must advertise the proxy: run the broker on
 * another loopback address with `--advertised-host <proxy host>` and the proxy on the advertised host with the
 * broker's port (`startProxy({ listenHost: '127.0.0.1', targetHost: '127.0.0.2', port })`).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

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
  /** Swallows the next response to a request of `apiKey` and closes that client's connections. */
  dropNextAnswer(apiKey: number): void
  /** From now on, closes a client's connections at each request of `apiKey`, which never reaches the broker. */
  refuse(apiKey: number): void
  /** Requests refused so far. */
  readonly refused: number
  close(): Promise<void>
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

export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  const requests = new Map<number, number>()
  let armed: number | null = null
  let dropped = 0
  const refusing = new Set<number>()
  let refused = 0
  const server: Server = createServer((client) => {
    const upstream = connect({ host: options.targetHost, port: options.port })
    sockets.add(client).add(upstream)
    const apiKeys = new Map<number, number>()
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
        if (refusing.has(apiKey)) {
          refused++
          closeBoth()
          return
        }
        apiKeys.set(frame.readInt32BE(8), apiKey)
        upstream.write(frame)
      }),
    )
    upstream.on(
      'data',
      framer((frame) => {
        const correlationId = frame.readInt32BE(4)
        const apiKey = apiKeys.get(correlationId)
        apiKeys.delete(correlationId)
        if (armed !== null && apiKey === armed) {
          armed = null
          dropped++
          closeBoth()
          return
        }
        client.write(frame)
      }),
    )
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port, options.listenHost, resolve))
  return {
    requests,
    get dropped() {
      return dropped
    },
    dropNextAnswer(apiKey) {
      armed = apiKey
    },
    refuse(apiKey) {
      refusing.add(apiKey)
    },
    get refused() {
      return refused
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

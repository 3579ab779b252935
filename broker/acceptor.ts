/**
 * The listener: accepts connections and applies Kafka's connection quotas (SocketServer's Acceptor and
 * ConnectionQuotas), then hands each admitted socket to `serve`.
 *
 *   accepted -> max.connections reached? --yes--> held: accepted, unread, in arrival order --a connection closes--+
 *                                         --no--> admit <----------------------------------------------------------+
 *   admit    -> max.connections.per.ip reached for its address? --yes--> closed at once
 *                                                                --no--> served
 *
 * - max.connections: Kafka's acceptor blocks once the node has that many connections (waitForConnectionSlot), so new
 *   connections wait in the kernel's accept backlog, connected but unread, until one closes. Node cannot stop
 *   accepting while it listens, so Brook accepts them and holds them unread instead, which a client cannot tell
 *   apart. The differences: a held connection costs a file descriptor, which one in the backlog does not, and at
 *   most HELD_MAX are held (Kafka's default socket.listen.backlog.size); beyond that a new connection is closed at
 *   once where Kafka's kernel would drop its handshake.
 * - max.connections.per.ip: checked when a connection is admitted, after any wait for a slot, as ConnectionQuotas.inc
 *   does; a connection beyond it is closed at once (TooManyConnectionsException) and logged.
 * - File descriptors: the node keeps part of its open-file limit for its own files (a quarter of the limit, at most
 *   1,064: LevelDB's table cache of 1,000 files and 64 more) and closes at once, with a warning, a connection that
 *   would need one of those, so that clients can never take the descriptors the database needs to write. Kafka has
 *   no such reserve (its acceptor logs the failed accept and retries). Should accept fail anyway (EMFILE, ENFILE:
 *   the limit is unknown, or other files took the reserve), libuv accepts and closes the waiting connections with a
 *   descriptor it keeps for that, without telling Node unless that fails too (then the node logs it); new clients
 *   are served again as soon as descriptors are free. The limit is read from /proc/self/limits (Linux); elsewhere
 *   there is no reserve.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import type { Logger } from './logger.js'
import { monotonicMs } from './clock.js'

/** Connections held unread while max.connections is reached (Kafka's default socket.listen.backlog.size). */
const HELD_MAX = 50
/** Descriptors kept for the node's own files at most: LevelDB's table cache (classic-level's 1,000) and 64 more. */
const OWN_DESCRIPTORS_MAX = 1000 + 64
/** The same accept problem is logged at most this often, with the count since the last line. */
const PROBLEM_LOG_INTERVAL_MS = 10_000

/** The process's soft limit on open files (Linux, /proc/self/limits), or null when it is unknown or unlimited. */
function openFileLimit(): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

/** How many descriptors connections (served and held) may use under an open-file limit. */
function descriptorsForConnections(limit: number | null): number {
  if (limit === null) return Infinity
  return limit - Math.min(Math.floor(limit / 4), OWN_DESCRIPTORS_MAX)
}

/** Repeats of one problem, logged at most once per PROBLEM_LOG_INTERVAL_MS. */
interface Problem {
  count: number
  loggedAt: number
}

export interface AcceptorOptions {
  host: string
  port: number
  /** `max.connections`. */
  maxConnections: number
  /** `max.connections.per.ip`. */
  maxConnectionsPerIp: number
  log: Logger
  /** Takes an admitted socket (it arrives paused; resume it to read). */
  serve: (socket: Socket) => void
}

export class Acceptor {
  private readonly server: Server
  private readonly open = new Set<Socket>()
  private readonly held: Socket[] = []
  private readonly perIp = new Map<string, number>()
  private readonly descriptorLimit = openFileLimit()
  private readonly descriptorBudget = descriptorsForConnections(this.descriptorLimit)
  private readonly problems = new Map<string, Problem>()

  constructor(private readonly options: AcceptorOptions) {
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.accepted(socket))
  }

  /** Starts listening; rejects with a one-line reason (the port in use, for one). */
  listen(): Promise<void> {
    const { host, port } = this.options
    return new Promise((resolve, reject) => {
      this.server.once('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is already in use`) : error)
      })
      this.server.listen(port, host, () => {
        this.server.removeAllListeners('error')
        // After listening, errors come from accept: out of file descriptors, mostly. They must never go unheard,
        // since an 'error' event without a listener ends the process.
        this.server.on('error', (error: NodeJS.ErrnoException) => this.acceptFailed(error))
        resolve()
      })
    })
  }

  /** The address actually bound: what a host name given to listen on resolved to (`localhost` may be ::1 only). */
  get boundHost(): string | null {
    const address = this.server.address()
    return typeof address === 'object' && address ? address.address : null
  }

  /** The port actually bound (differs from the option when it asked for 0). */
  get port(): number {
    const address = this.server.address()
    return typeof address === 'object' && address ? address.port : this.options.port
  }

  /** Stops listening and closes every connection, held ones included. */
  close(): Promise<void> {
    // server.close() calls back only once every connection is gone, so connections are closed first.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const socket of [...this.open, ...this.held]) socket.destroy()
    this.held.length = 0
    return closed
  }

  private accepted(socket: Socket): void {
    // An 'error' event on a socket without a listener would end the process; a held socket has no other listener.
    socket.on('error', () => undefined)
    try {
      this.place(socket)
    } catch (error) {
      this.options.log.error(`accepting a connection failed: ${(error as Error)?.stack ?? error}`)
      socket.destroy()
    }
  }

  /** Serves, holds or closes a new connection, by the quotas. */
  private place(socket: Socket): void {
    if (this.open.size + this.held.length >= this.descriptorBudget) {
      this.report('warn', 'descriptors', `closed new connections: the open-file limit (${this.descriptorLimit}) leaves descriptors for ${this.descriptorBudget} connections and all are in use; raise it (ulimit -n) or set max.connections lower`)
      socket.destroy()
      return
    }
    if (this.open.size < this.options.maxConnections) {
      this.admit(socket)
      return
    }
    if (this.held.length >= HELD_MAX) {
      this.report('warn', 'held', `closed new connections: max.connections (${this.options.maxConnections}) is reached and ${HELD_MAX} more connections already wait`)
      socket.destroy()
      return
    }
    this.options.log.debug(`connection from ${socket.remoteAddress} waits: max.connections (${this.options.maxConnections}) reached`)
    this.held.push(socket)
  }

  private admit(socket: Socket): void {
    const address = socket.remoteAddress
    if (address === undefined || socket.destroyed) {
      // The client was gone before we got to it.
      socket.destroy()
      return
    }
    const count = this.perIp.get(address) ?? 0
    if (count >= this.options.maxConnectionsPerIp) {
      this.options.log.info(`rejected connection from ${address}: it already has max.connections.per.ip (${this.options.maxConnectionsPerIp}) connections`)
      socket.destroy()
      return
    }
    this.perIp.set(address, count + 1)
    this.open.add(socket)
    socket.once('close', () => {
      this.open.delete(socket)
      const left = this.perIp.get(address)! - 1
      if (left === 0) this.perIp.delete(address)
      else this.perIp.set(address, left)
      this.admitHeld()
    })
    try {
      this.options.serve(socket)
    } catch (error) {
      this.options.log.error(`serving a connection from ${address} failed: ${(error as Error)?.stack ?? error}`)
      socket.destroy()
    }
  }

  private admitHeld(): void {
    while (this.held.length > 0 && this.open.size < this.options.maxConnections) this.admit(this.held.shift()!)
  }

  private acceptFailed(error: NodeJS.ErrnoException): void {
    const outOfDescriptors = error.code === 'EMFILE' || error.code === 'ENFILE'
    const advice = outOfDescriptors ? '; raise the open-file limit (ulimit -n) or set max.connections lower' : ''
    this.report('error', 'accept', `cannot accept connections: ${error.message} (${this.open.size} connections open)${advice}`)
  }

  /** Logs a problem the first time and then at most every PROBLEM_LOG_INTERVAL_MS, with how often it happened. */
  private report(level: 'warn' | 'error', kind: string, text: string): void {
    const problem = this.problems.get(kind) ?? { count: 0, loggedAt: -Infinity }
    this.problems.set(kind, problem)
    problem.count++
    const now = monotonicMs()
    if (now - problem.loggedAt < PROBLEM_LOG_INTERVAL_MS) return
    this.options.log[level](problem.count > 1 ? `${text} (${problem.count} times since the last report)` : text)
    problem.loggedAt = now
    problem.count = 0
  }
}

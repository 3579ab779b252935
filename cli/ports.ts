/**
 * Free ports for processes this one is about to start (`brook dev --base-port 0`, the bench's and tests' clusters).
 * A port chosen free and released before its node listens can be taken in between. Ports from `listen(0)` come
 * from the system's ephemeral range, which every outgoing connection on the machine also draws from, so a client
 * connecting anywhere meanwhile may take one. Ports here are drawn at random below that range instead, where only
 * another program listening on purpose can take them.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/** Lowest port drawn: above the registered ports most local services use. */
const LOWEST_DRAWN_PORT = 10_000

let firstEphemeralPort: number | undefined

/**
 * The first port Linux hands out for outgoing connections and `listen(0)` (net.ipv4.ip_local_port_range), read once;
 * Linux's default when the file cannot be read.
 */
function ephemeralStart(): number {
  if (firstEphemeralPort === undefined) {
    let first = 32768
    try {
      const read = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
      if (Number.isInteger(read)) first = read
    } catch {
      // Not Linux, or no /proc: the default range.
    }
    firstEphemeralPort = first
  }
  return firstEphemeralPort
}

/**
 * A random port p such that p .. p + span - 1 all lie below the system's ephemeral ports (and at most `highest`),
 * or null where that leaves no room. Not checked for being free: see `portFree`.
 */
export function drawPort(span: number, highest = 65535): number | null {
  const top = Math.min(highest, ephemeralStart() - span)
  return top >= LOWEST_DRAWN_PORT ? LOWEST_DRAWN_PORT + Math.floor(Math.random() * (top - LOWEST_DRAWN_PORT + 1)) : null
}

/** Whether `port` of `host` can be listened on now. */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}

/** A port the system hands out as free now (from its ephemeral range). */
export function systemFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

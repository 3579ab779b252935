/**
 * Host and port as Kafka writes and reads them where they meet in one string: an IPv6 host in brackets (`[::1]:9092`,
 * `PLAINTEXT://[::1]:9092`, `1@[::1]:9093`), since its own colons would otherwise run into the port's.
 */
import { isIPv6 } from 'node:net'

/**
 * `host:port`, with an IPv6 host in brackets (`[::1]:9092`), as Kafka's `Utils.formatAddress` writes it: every
 * address Brook prints or hands on as one string is built here, so that one can be read back (and pasted as
 * `--bootstrap-server`).
 */
export function hostPort(host: string, port: number): string {
  return `${bracketed(host)}:${port}`
}

/** A host as it is written before a port or in a sentence: an IPv6 one in brackets (`[::]`), any other as given. */
export function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/**
 * A host given in IPv6 brackets (`[::1]`, the form Kafka's listener URIs, `controller.quorum.voters` and
 * `--bootstrap-server` take) without them, as Kafka's `Utils.getHost` reads it: the address to listen on, connect to
 * or tell clients. Any other host is returned as given.
 */
export function unbracketed(host: string): string {
  const match = /^\[([^\]]*)\]$/.exec(host)
  return match ? match[1]! : host
}

/**
 * Whether a host is the unspecified address, however spelt: `0.0.0.0`, `::`, and what the system reads as them (`0`,
 * `0.0`, `::0`, `0:0:0:0:0:0:0:0`, in brackets or not). A node listening there listens on every interface, but no
 * client can connect to it (Kafka: "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0", and a
 * voter's "Host string (0.0.0.0) is not routeable").
 */
export function isUnspecifiedAddress(host: string): boolean {
  const bare = unbracketed(host)
  // inet_aton's shorter forms of 0.0.0.0 (0, 0.0) are what getaddrinfo and so Node's listen make of them.
  if (isIPv6(bare)) return bare.split(':').every((group) => /^0*$/.test(group))
  return /^0+(?:\.0+){0,3}$/.test(bare)
}

/**
 * Whether a value given where a host belongs is `host:port` (`127.0.0.1:9092`, `[::1]:9092`, `PLAINTEXT://h:9092`):
 * a colon that is not part of an IPv6 address.
 */
export function hasPort(host: string): boolean {
  return unbracketed(host).includes(':') && !isIPv6(unbracketed(host))
}

/** A node's host and port, as `--bootstrap-server` and Metadata give them. */
export interface BrokerAddress {
  host: string
  port: number
}

/**
 * Parses a `--bootstrap-server` list: `host:port[,host:port...]`, IPv6 hosts in brackets (`[::1]:9092`).
 * Throws a message fit for the command line.
 */
export function parseBootstrapServers(value: string): BrokerAddress[] {
  const addresses = value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  if (addresses.length === 0) throw new Error('the bootstrap server list is empty')
  return addresses.map((item) => {
    const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(item)
    const port = match ? Number(match[3]) : NaN
    if (!match || port < 1 || port > 65535) throw new Error(`'${item}' is not host:port`)
    return { host: match[1] ?? match[2]!, port }
  })
}

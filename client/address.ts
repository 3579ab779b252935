/**
 * Host and port as Kafka writes and reads them where they meet in one string: an IPv6 host in brackets (`[::1]:9092`,
 * `PLAINTEXT://[::1]:9092`, `1@[::1]:9093`), since its own colons would otherwise run into the port's.
 */

/**
 * `host:port`, with an IPv6 host in brackets (`[::1]:9092`), as Kafka's `Utils.formatAddress` writes it: every
 * address Brook prints or hands on as one string is built here, so that one can be read back (and pasted as
 * `--bootstrap-server`).
 */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
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

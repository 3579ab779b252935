/**
 * The sockets the processor's kafkajs clients connect with. kafkajs opens them with Nagle's algorithm on, so a small
 * request written while an earlier one is unanswered waits for the broker's delayed ACK (about 40 ms on Linux): a
 * commit's produce, AddOffsetsToTxn, TxnOffsetCommit and EndTxn follow each other in a few milliseconds, and each
 * could wait that long. Kafka's Java client sets TCP_NODELAY (`tcp.nodelay` is not even a setting), and so does this
 * factory. Otherwise it connects as kafkajs's own does: TLS when the client has `ssl` settings (with the host as the
 * server name unless it is an IP address), TCP keep-alive after 60 s.
 *
 * It also checks the start of the first answer, as Brook's own client does: a server that is not Kafka (an HTTP port
 * given by mistake) answers `HTTP/1.1 400 ...`, which kafkajs reads as the size of a 1.2 GB response and waits for
 * until the server closes, then reports only "Closed connection". A first answer above 100 MiB fails the socket with
 * an error that quotes it, which kafkajs passes on in its own. The first request is ApiVersions, or, on a connection
 * to a broker whose versions kafkajs already knows, another request whose answer is far smaller (kafkajs fetches at
 * most 10 MiB, and the processor keeps that default).
 *
 * TLS on one side only is named too: a first answer that is a TLS record (a TLS listener's alert to a plaintext
 * request) says to set `ssl`, and a TLS socket that the server closes during the handshake (a PLAINTEXT listener,
 * such as Brook's, reads the ClientHello as a request of some 369 MB and closes the connection) says that the
 * listener may not be TLS, where Node says only "Client network socket disconnected before secure TLS connection was
 * established".
 *
 * A `socketFactory` in the pipeline's `kafka` settings replaces it.
 */
import { connect, isIP, type Socket } from 'node:net'
import { connect as connectTls } from 'node:tls'
import type { ISocketFactory } from 'kafkajs'

const KEEP_ALIVE_DELAY_MS = 60_000

/** The largest first answer taken as Kafka's: client/kafka-client.ts's MAX_RESPONSE_BYTES (processor/ imports no client/). */
const MAX_FIRST_RESPONSE_BYTES = 100 * 1024 * 1024

/** A kafkajs `socketFactory` whose sockets send at once (TCP_NODELAY), unless `noDelay` is false. */
export function socketFactory(options: { noDelay: boolean } = { noDelay: true }): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? connectTls({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...ssl }, onConnect)
      : connect({ host, port }, onConnect)
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS)
    socket.setNoDelay(options.noDelay)
    failIfNotKafka(socket, `${host}:${port}`)
    if (ssl) nameCutHandshake(socket, `${host}:${port}`)
    return socket
  }
}

/** The start of a TLS record that a server sends first: an alert (0x15) or a handshake (0x16), version 3.x. */
function isTlsRecord(bytes: Buffer): boolean {
  return (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03
}

/**
 * Rewords the error of a TLS socket that the server closes before the handshake ends (Node's ECONNRESET "Client
 * network socket disconnected before secure TLS connection was established"). The listener runs first, so kafkajs's
 * own, which wraps the message in its KafkaJSConnectionError, gets the new words.
 */
function nameCutHandshake(socket: Socket, address: string): void {
  let secured = false
  socket.once('secureConnect', () => (secured = true))
  socket.prependOnceListener('error', (error: NodeJS.ErrnoException) => {
    if (secured || error.code !== 'ECONNRESET') return
    error.message = `${address} closed the connection during the TLS handshake: it is not a TLS listener (a PLAINTEXT one, as Brook's are?), or it turned the connection away; ssl is set in the kafkajs settings (--kafka-config)`
  })
}

/** Destroys `socket` with an error quoting the server's first bytes when their size field cannot start Kafka's answer. */
function failIfNotKafka(socket: Socket, address: string): void {
  let first = Buffer.alloc(0)
  const onData = (chunk: Buffer): void => {
    first = Buffer.concat([first, chunk])
    if (first.length < 4) return
    socket.off('data', onData)
    const size = first.readInt32BE(0)
    if (size >= 4 && size <= MAX_FIRST_RESPONSE_BYTES) return
    if (isTlsRecord(first)) {
      socket.destroy(new Error(`the server at ${address} answered with TLS (bytes ${first.subarray(0, 4).toString('hex')}): it is a TLS listener; set ssl in the kafkajs settings (--kafka-config)`))
      return
    }
    const line = first.toString('latin1').split(/\r?\n/)[0]!
    const quoted = line.length >= 4 && /^[\x20-\x7e]+$/.test(line) ? `'${line}'` : `bytes ${first.subarray(0, 16).toString('hex')}`
    socket.destroy(new Error(`the server at ${address} did not answer as a Kafka broker: its answer began with ${quoted}`))
  }
  socket.on('data', onData)
}

/**
 * The sockets the processor's kafkajs clients connect with. kafkajs opens them with Nagle's algorithm on, so a small
 * request written while an earlier one is unanswered waits for the broker's delayed ACK (about 40 ms on Linux): a
 * commit's produce, AddOffsetsToTxn, TxnOffsetCommit and EndTxn follow each other in a few milliseconds, and each
 * could wait that long. Kafka's Java client sets TCP_NODELAY (`tcp.nodelay` is not even a setting), and so does this
 * factory. Otherwise it connects as kafkajs's own does: TLS when the client has `ssl` settings (with the host as the
 * server name unless it is an IP address), TCP keep-alive after 60 s.
 *
 * A `socketFactory` in the pipeline's `kafka` settings replaces it.
 */
import { connect, isIP } from 'node:net'
import { connect as connectTls } from 'node:tls'
import type { ISocketFactory } from 'kafkajs'

const KEEP_ALIVE_DELAY_MS = 60_000

/** A kafkajs `socketFactory` whose sockets send at once (TCP_NODELAY), unless `noDelay` is false. */
export function socketFactory(options: { noDelay: boolean } = { noDelay: true }): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? connectTls({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), ...ssl }, onConnect)
      : connect({ host, port }, onConnect)
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS)
    socket.setNoDelay(options.noDelay)
    return socket
  }
}

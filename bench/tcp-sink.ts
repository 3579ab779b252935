/**
 * Worker: the receiving end of the loopback TCP scenario. Listens on 127.0.0.1, reports its port, counts the bytes
 * of one connection from the first byte to its end, and reports them.
 */
import { createServer } from 'node:net'
import { report } from './worker.js'

const server = createServer((socket) => {
  let bytes = 0
  let start = 0
  socket.on('data', (chunk: Buffer) => {
    if (start === 0) start = performance.now()
    bytes += chunk.length
  })
  socket.on('end', () => {
    report({ bytes, seconds: (performance.now() - start) / 1000 })
    socket.end()
    server.close()
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  report({ port: typeof address === 'object' && address ? address.port : 0 })
})

/**
 * Scenario: raw loopback TCP between two processes, for context. This process writes 1 MiB buffers as fast as the
 * socket takes them (waiting for 'drain') for a fixed time; a sink process counts what arrives. On this machine kind
 * the socket is an order of magnitude faster than LevelDB, so it is not what limits produce.
 */
import { connect } from 'node:net'
import { startCpuMeter, throughput, type CpuUse, type Throughput } from './measure.js'
import { spawnWorker } from './worker.js'

const CHUNK = Buffer.alloc(1024 * 1024, 0x61)

export async function rawTcp(durationMs: number): Promise<Throughput & { cpu?: CpuUse }> {
  const sink = spawnWorker('tcp-sink.js', {})
  const { port } = await sink.next<{ port: number }>()
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  const meter = startCpuMeter({ sink: sink.pid })
  const start = performance.now()
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (performance.now() - start < durationMs) {
        if (!socket.write(CHUNK)) {
          socket.once('drain', pump)
          return
        }
      }
      resolve()
    }
    pump()
  })
  socket.end()
  const received = await sink.next<{ bytes: number; seconds: number }>()
  const cpu = meter?.()
  await sink.exited
  return { ...throughput(received.bytes, 0, received.seconds), cpu }
}

// Writes to a LevelRaftStore in a loop until killed, for the crash-consistency test (store.test.ts). Plain
// JavaScript on the built store, because the test spawns it with node directly.
//
// argv[2]: the data directory. Each write appends one batch of epoch n and sets the election epoch to n, as one
// write; every 50th also truncates the previous batch and takes a snapshot. After each write, n goes to stdout.
import { Level } from 'level'
import { LevelRaftStore } from '../../../dist/storage/raft-level-store.js'

const db = new Level(process.argv[2], { keyEncoding: 'buffer', valueEncoding: 'buffer' })
await db.open()
const store = new LevelRaftStore(db.sublevel('raft', { keyEncoding: 'buffer', valueEncoding: 'buffer' }))
const state = await store.load()
let epoch = state.election?.epoch ?? 0
const last = state.batches.at(-1)
let end = last ? last.baseOffset + BigInt(last.records.length) : (state.snapshot?.endOffset ?? 0n)
for (;;) {
  epoch++
  const writes = [{ type: 'election', election: { epoch, leaderId: null, votedId: 1 } }]
  if (epoch % 50 === 0 && end > 0n) {
    writes.push({ type: 'truncate', offset: end - 1n })
    end -= 1n
    writes.push({
      type: 'snapshot',
      snapshot: { endOffset: end, epoch: epoch - 1, data: Buffer.alloc(4096, epoch % 256) },
    })
  }
  const records = Array.from({ length: 1 }, () => Buffer.alloc(200, epoch % 256))
  writes.push({ type: 'append', batches: [{ type: 'data', baseOffset: end, epoch, records }] })
  end += 1n
  await store.write(writes)
  process.stdout.write(`${epoch}\n`)
}

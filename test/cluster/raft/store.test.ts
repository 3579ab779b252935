/**
 * The Raft stores: the shared contract on the memory store, on LevelDB (a real database in a temporary directory)
 * and on a node's database (its `!raft!` sublevel written through the database's write gate), LevelDB's key
 * layout, and crash consistency: a writer process killed with SIGKILL mid-stream leaves a state that loads, with each
 * write whole or absent.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Level } from 'level'
import { LevelRaftStore } from '../../../storage/raft-level-store.js'
import { MemoryRaftStore } from '../../../storage/raft-memory-store.js'
import { LogStore } from '../../../storage/log-store.js'
import { data, raftStoreContract } from './store-contract.js'

const opened: Level<Buffer, Buffer>[] = []
const closing: (() => Promise<void>)[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.close()))
  await Promise.all(closing.splice(0).map((close) => close()))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

async function openLevel(dir: string): Promise<Level<Buffer, Buffer>> {
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  await db.open()
  opened.push(db)
  return db
}

function raftSublevel(db: Level<Buffer, Buffer>): LevelRaftStore {
  return new LevelRaftStore(db.sublevel<Buffer, Buffer>('raft', { keyEncoding: 'buffer', valueEncoding: 'buffer' }))
}

raftStoreContract('memory', async () => {
  const store = new MemoryRaftStore()
  return { store, reopen: () => Promise.resolve(store) }
})

raftStoreContract('LevelDB', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'brook-raft-store-'))
  dirs.push(dir)
  let db = await openLevel(dir)
  return {
    store: raftSublevel(db),
    async reopen() {
      await db.close()
      db = await openLevel(dir)
      return raftSublevel(db)
    },
  }
})

// A node's store: the `!raft!` sublevel of its database, written through the database's write gate.
raftStoreContract("a node's database (LogStore.raftStore)", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'brook-raft-store-'))
  dirs.push(dir)
  let store = await LogStore.open(dir)
  closing.push(() => store.close())
  return {
    store: store.raftStore(),
    async reopen() {
      await store.close()
      store = await LogStore.open(dir)
      closing.push(() => store.close())
      return store.raftStore()
    },
  }
})

describe('LevelRaftStore', () => {
  test("keeps to its sublevel: batches under 'e' + base offset (int64 BE), the election under 'q'", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'brook-raft-store-'))
    dirs.push(dir)
    const db = await openLevel(dir)
    await db.put(Buffer.from('other'), Buffer.from('kept'))
    await raftSublevel(db).write([
      { type: 'election', election: { epoch: 3, leaderId: 1, votedId: 1 } },
      { type: 'append', batches: [data(0n, 3, 'a'), data(1n, 3, 'b')] },
    ])
    const keys: string[] = []
    for await (const key of db.keys()) keys.push(key.toString('hex'))
    const prefix = Buffer.from('!raft!').toString('hex')
    expect(keys.sort()).toEqual(
      [
        `${prefix}650000000000000000`,
        `${prefix}650000000000000001`,
        `${prefix}71`,
        Buffer.from('other').toString('hex'),
      ].sort(),
    )
  })

  test('a writer killed with SIGKILL leaves whole writes only', async () => {
    const writer = resolve(import.meta.dirname, 'level-store-writer.mjs')
    expect(
      existsSync(resolve(import.meta.dirname, '../../../dist/storage/raft-level-store.js')),
      'run `npm run build` first',
    ).toBe(true)
    const dir = await mkdtemp(join(tmpdir(), 'brook-raft-crash-'))
    dirs.push(dir)
    for (const round of [1, 2, 3]) {
      const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
      // Kill it once it has written a hundred times more: the kill lands mid-stream.
      let written = 0
      await new Promise<void>((resolveWritten) => {
        child.stdout.on('data', (chunk: Buffer) => {
          written = Number(chunk.toString().trim().split('\n').at(-1))
          if (written >= round * 100) resolveWritten()
        })
      })
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit))
      child.kill('SIGKILL')
      await exited
      const db = await openLevel(dir)
      const state = await raftSublevel(db).load()
      // Each write set the election epoch to the epoch of the batch it appended, in one LevelDB batch.
      const last = state.batches.at(-1)!
      expect(state.election?.epoch).toBe(last.epoch)
      expect(last.epoch).toBeGreaterThanOrEqual(written)
      await db.close()
      opened.splice(opened.indexOf(db), 1)
    }
  })
})

/**
 * A RaftStore in a sublevel of the node's LevelDB database (the caller creates it, with buffer keys and values):
 *
 *   'e' | baseOffset (int64 BE)  ->  msgpack { type, epoch, records | leaderChange }   one log batch
 *   'q'                          ->  msgpack { epoch, leaderId, votedId }               the election state
 *   's'                          ->  msgpack { endOffset, epoch, data }                 the latest snapshot
 *
 * Batch keys are fixed-width big-endian, so LevelDB's byte order is offset order and a truncation or a snapshot's
 * cleanup is one key range. Each `write` is one LevelDB batch, so a crash keeps all of it or none of it (the
 * election state, the entries and the snapshot never disagree); with `sync` (the default) the batch is also synced
 * to disk before `write` resolves, because a member acts on what it wrote (a granted vote, an acknowledged offset)
 * and must not forget it on a power loss. The metadata log is small, and the quorum runner writes the records of the
 * controller operations queued together in one write, so the sync costs little even when a node asks for an ISR
 * change of each of its thousands of partitions at once.
 *
 * Writes are chained: a `write` starts after the previous one finished, because a truncation reads the keys it
 * removes. A node's store writes through the node's write gate (`NodeDatabase.write`, given as the `write` option):
 * the metadata log's writes then queue with every other write of the database, and after a failed write of either
 * kind nothing more is written (storage/README.md: a torn write-ahead-log record drops every later write on reopen).
 */
import type { Sublevel, WriteBatch } from './database.js'
import { packr } from './database.js'
import {
  checkPersistentState,
  type ElectionState,
  type LeaderChangeRecord,
  type RaftBatch,
  type RaftPersistentState,
  type RaftSnapshot,
  type RaftStore,
  type RaftWrite,
} from './raft-store.js'

const ENTRY_TAG = 0x65 // 'e'
const ELECTION_KEY = Buffer.from('q')
const SNAPSHOT_KEY = Buffer.from('s')
const ENTRY_KEY_SIZE = 9
const ENTRIES_END = Buffer.from([ENTRY_TAG + 1])

function entryKey(baseOffset: bigint): Buffer {
  const key = Buffer.allocUnsafe(ENTRY_KEY_SIZE)
  key[0] = ENTRY_TAG
  key.writeBigInt64BE(baseOffset, 1)
  return key
}

type StoredBatch =
  | { type: 'data'; epoch: number; records: Buffer[] }
  | { type: 'leaderChange'; epoch: number; leaderChange: LeaderChangeRecord }

function encodeBatch(batch: RaftBatch): Buffer {
  const stored: StoredBatch =
    batch.type === 'data'
      ? { type: 'data', epoch: batch.epoch, records: [...batch.records] }
      : { type: 'leaderChange', epoch: batch.epoch, leaderChange: batch.leaderChange }
  return packr.pack(stored)
}

function decodeBatch(key: Buffer, value: Buffer): RaftBatch {
  const baseOffset = key.readBigInt64BE(1)
  const stored = packr.unpack(value) as StoredBatch
  return stored.type === 'data'
    ? { type: 'data', baseOffset, epoch: stored.epoch, records: stored.records }
    : { type: 'leaderChange', baseOffset, epoch: stored.epoch, leaderChange: stored.leaderChange }
}

/** Runs one write: `fill` adds its puts and deletes to a batch of the root database, which is then written atomically. */
export type RaftWriteGate = (fill: (batch: WriteBatch) => void, options: { sync: boolean }) => Promise<unknown>

export interface LevelRaftStoreOptions {
  /** Sync each write to disk before it resolves (default true). */
  sync?: boolean
  /** How writes reach LevelDB: the node's write gate; by default a batch of the sublevel's root database. */
  write?: RaftWriteGate
}

export class LevelRaftStore implements RaftStore {
  private readonly sync: boolean
  private readonly gate: RaftWriteGate
  private chain: Promise<void> = Promise.resolve()

  /** `db`: a sublevel with buffer keys and values that holds nothing else. */
  constructor(
    private readonly db: Sublevel<Buffer, Buffer>,
    options: LevelRaftStoreOptions = {},
  ) {
    this.sync = options.sync ?? true
    this.gate =
      options.write ??
      ((fill, writeOptions) => {
        const batch = db.db.batch()
        fill(batch)
        return batch.write(writeOptions)
      })
  }

  /** Reads everything; throws if what is stored breaks the invariants of raft-store.ts. */
  async load(): Promise<RaftPersistentState> {
    await this.chain
    await this.ready()
    const [election, snapshot] = await this.db.getMany([ELECTION_KEY, SNAPSHOT_KEY])
    const batches: RaftBatch[] = []
    for await (const [key, value] of this.db.iterator({ gte: entryKey(0n), lt: ENTRIES_END })) {
      batches.push(decodeBatch(key, value))
    }
    const state: RaftPersistentState = {
      election: election === undefined ? null : (packr.unpack(election) as ElectionState),
      snapshot: snapshot === undefined ? null : (packr.unpack(snapshot) as RaftSnapshot),
      batches,
    }
    checkPersistentState(state)
    return state
  }

  write(writes: readonly RaftWrite[]): Promise<void> {
    const done = this.chain.then(() => this.writeNow(writes))
    this.chain = done.catch(() => undefined)
    return done
  }

  /** A sublevel made after its database opened is still opening; a chained batch needs it open. */
  private async ready(): Promise<void> {
    if (this.db.status === 'opening') await this.db.open()
  }

  private async writeNow(writes: readonly RaftWrite[]): Promise<void> {
    await this.ready()
    // The operations are listed first, in order (a truncation removes what an earlier append of the list put), with
    // the keys to delete read beforehand, so that filling the batch is synchronous.
    const operations: ({ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer })[] = []
    /** Base offsets put earlier in this same list: a later truncation or snapshot in the list removes them too. */
    const added: bigint[] = []
    const removeRange = async (from: bigint, to: bigint | null): Promise<void> => {
      const range = { gte: entryKey(from), lt: to === null ? ENTRIES_END : entryKey(to) }
      for await (const key of this.db.keys(range)) operations.push({ type: 'del', key })
      for (const offset of added) {
        if (offset >= from && (to === null || offset < to)) operations.push({ type: 'del', key: entryKey(offset) })
      }
    }
    for (const write of writes) {
      switch (write.type) {
        case 'election':
          operations.push({ type: 'put', key: ELECTION_KEY, value: packr.pack(write.election) })
          break
        case 'append':
          for (const entry of write.batches) {
            operations.push({ type: 'put', key: entryKey(entry.baseOffset), value: encodeBatch(entry) })
            added.push(entry.baseOffset)
          }
          break
        case 'truncate':
          await removeRange(write.offset, null)
          break
        case 'snapshot':
          operations.push({ type: 'put', key: SNAPSHOT_KEY, value: packr.pack(write.snapshot) })
          await removeRange(0n, write.snapshot.endOffset)
          break
      }
    }
    const sublevel = { sublevel: this.db }
    await this.gate(
      (batch) => {
        for (const operation of operations) {
          if (operation.type === 'put') batch.put<Buffer, Buffer>(operation.key, operation.value, sublevel)
          else batch.del<Buffer>(operation.key, sublevel)
        }
      },
      { sync: this.sync },
    )
  }
}

/**
 * What every RaftStore must do, run against each store with one call (`raftStoreContract(name, open)`): round trips
 * of the election state, batches of both kinds and snapshots, truncation and snapshot cleanup (also of batches written
 * earlier in the same list), and state that survives a reopen.
 */
import { describe, expect, test } from 'vitest'
import type { RaftBatch, RaftStore } from '../../../storage/raft-store.js'

export interface OpenedStore {
  store: RaftStore
  /** The same data, as a restarted node would open it. */
  reopen(): Promise<RaftStore>
}

export function data(baseOffset: bigint, epoch: number, ...values: string[]): RaftBatch {
  return { type: 'data', baseOffset, epoch, records: values.map((value) => Buffer.from(value)) }
}

export function leaderChange(baseOffset: bigint, epoch: number, leaderId: number): RaftBatch {
  return {
    type: 'leaderChange',
    baseOffset,
    epoch,
    leaderChange: { leaderId, voters: [1, 2, 3], grantingVoters: [leaderId, 2] },
  }
}

function shape(batches: readonly RaftBatch[]): unknown[] {
  return batches.map((batch) =>
    batch.type === 'data'
      ? { base: batch.baseOffset, epoch: batch.epoch, values: batch.records.map((record) => record.toString()) }
      : { base: batch.baseOffset, epoch: batch.epoch, leaderChange: batch.leaderChange },
  )
}

export function raftStoreContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`raft store contract: ${name}`, () => {
    test('a new store holds nothing', async () => {
      const { store } = await open()
      expect(await store.load()).toEqual({ election: null, snapshot: null, batches: [] })
    })

    test('the election state, batches of both kinds and their order survive a reopen', async () => {
      const opened = await open()
      await opened.store.write([
        { type: 'election', election: { epoch: 1, leaderId: null, votedId: 2 } },
        { type: 'append', batches: [leaderChange(0n, 1, 2), data(1n, 1, 'a', 'b')] },
      ])
      await opened.store.write([
        { type: 'election', election: { epoch: 1, leaderId: 2, votedId: 2 } },
        { type: 'append', batches: [data(3n, 1, 'c')] },
      ])
      const loaded = await (await opened.reopen()).load()
      expect(loaded.election).toEqual({ epoch: 1, leaderId: 2, votedId: 2 })
      expect(loaded.snapshot).toBeNull()
      expect(shape(loaded.batches)).toEqual(shape([leaderChange(0n, 1, 2), data(1n, 1, 'a', 'b'), data(3n, 1, 'c')]))
    })

    test('truncation removes every batch from its offset on, also those appended earlier in one write', async () => {
      const opened = await open()
      await opened.store.write([{ type: 'append', batches: [data(0n, 1, 'a'), data(1n, 1, 'b'), data(2n, 2, 'c')] }])
      await opened.store.write([
        { type: 'truncate', offset: 1n },
        { type: 'append', batches: [data(1n, 3, 'x'), data(2n, 3, 'y')] },
        { type: 'truncate', offset: 2n },
      ])
      expect(shape((await (await opened.reopen()).load()).batches)).toEqual(shape([data(0n, 1, 'a'), data(1n, 3, 'x')]))
    })

    test('a snapshot replaces the previous one and removes the batches below it', async () => {
      const opened = await open()
      await opened.store.write([
        { type: 'append', batches: [data(0n, 1, 'a'), data(1n, 1, 'b', 'c'), data(3n, 2, 'd')] },
      ])
      await opened.store.write([
        { type: 'snapshot', snapshot: { endOffset: 1n, epoch: 1, data: Buffer.from('first') } },
      ])
      await opened.store.write([
        { type: 'snapshot', snapshot: { endOffset: 3n, epoch: 1, data: Buffer.from('second') } },
      ])
      const loaded = await (await opened.reopen()).load()
      expect(loaded.snapshot).toEqual({ endOffset: 3n, epoch: 1, data: Buffer.from('second') })
      expect(shape(loaded.batches)).toEqual(shape([data(3n, 2, 'd')]))
    })

    test("a snapshot fetched from the leader replaces the whole log (a follower's install)", async () => {
      const opened = await open()
      await opened.store.write([{ type: 'append', batches: [data(0n, 1, 'a'), data(1n, 2, 'stale')] }])
      const snapshot = { endOffset: 2n ** 40n, epoch: 7, data: Buffer.alloc(100_000, 7) }
      await opened.store.write([
        { type: 'truncate', offset: 0n },
        { type: 'snapshot', snapshot },
      ])
      await opened.store.write([{ type: 'append', batches: [data(2n ** 40n, 8, 'next')] }])
      const loaded = await (await opened.reopen()).load()
      expect(loaded.snapshot).toEqual(snapshot)
      expect(shape(loaded.batches)).toEqual(shape([data(2n ** 40n, 8, 'next')]))
    })
  })
}

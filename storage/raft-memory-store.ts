/**
 * A RaftStore in memory, for the deterministic simulation and for tests: it holds exactly what was written to it,
 * so a simulated crash (the member's object dropped, a new one started from `load`) keeps only what was persisted.
 * Writes that the member produced but never handed to `write` are lost, as on a real crash. The synchronous
 * variants let an event loop persist without awaiting.
 */
import {
  type ElectionState,
  type RaftBatch,
  type RaftPersistentState,
  type RaftSnapshot,
  type RaftStore,
  type RaftWrite,
} from './raft-store.js'

export class MemoryRaftStore implements RaftStore {
  private election: ElectionState | null = null
  private snapshot: RaftSnapshot | null = null
  private batches: RaftBatch[] = []

  load(): Promise<RaftPersistentState> {
    return Promise.resolve(this.loadSync())
  }

  write(writes: readonly RaftWrite[]): Promise<void> {
    this.writeSync(writes)
    return Promise.resolve()
  }

  loadSync(): RaftPersistentState {
    return { election: this.election, snapshot: this.snapshot, batches: [...this.batches] }
  }

  writeSync(writes: readonly RaftWrite[]): void {
    for (const write of writes) {
      switch (write.type) {
        case 'election':
          this.election = write.election
          break
        case 'append':
          this.batches.push(...write.batches)
          break
        case 'truncate':
          this.batches = this.batches.filter((batch) => batch.baseOffset < write.offset)
          break
        case 'snapshot':
          this.snapshot = write.snapshot
          this.batches = this.batches.filter((batch) => batch.baseOffset >= write.snapshot.endOffset)
          break
      }
    }
  }
}

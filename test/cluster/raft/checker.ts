/**
 * Raft's safety properties, checked against a simulated cluster while it runs (after every step of a node) and at
 * the end of a run. The first violation throws a SafetyViolation.
 *
 * - Election safety: at most one leader per epoch (every node seen as Leader is recorded by epoch).
 * - Log matching: two logs that hold an entry with the same offset and epoch hold the same entries up to it, and one
 *   (offset, epoch) names one batch content across the whole run.
 * - Leader completeness: a node that becomes leader of epoch E holds every batch committed in an epoch before E
 *   (committed = below the high watermark of a node seen in that epoch; a leader of an old epoch may be elected
 *   late, after newer epochs committed more, and can commit nothing). Stronger, and checked before any election: a
 *   voter that could win one (its log is at least as up to date as a majority's, counting down voters by what they
 *   persisted) already holds every committed batch; an entry committed too early (Raft's figure 8) fails this.
 * - Committed entries are never changed: a committed offset keeps its batch for the whole run.
 * - State machine safety: every applied or restored record agrees with one history (offset -> value), each node's
 *   applied sequence is a prefix of that history (checked at the end), and offsets only grow per incarnation.
 * - Local invariants: logStartOffset <= applied offset <= high watermark <= log end offset.
 */
import type { RaftNode } from '../../../broker/cluster/raft/node.js'
import { majority } from '../../../broker/cluster/raft/config.js'
import { compareLogEnds } from '../../../broker/cluster/raft/quorum-state.js'
import { batchEndOffset, type RaftBatch } from '../../../storage/raft-store.js'
import type { AppliedRecord, RecordingStateMachine, StateMachineObserver } from './recording-state-machine.js'

/** A voter's log as an election sees it: a live node's in memory, a down node's as persisted. */
export interface VoterLog {
  readonly nodeId: number
  readonly lastEpoch: number
  readonly endOffset: bigint
  readonly logStartOffset: bigint
  readonly batches: readonly RaftBatch[]
}

export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation'
}

const fingerprints = new WeakMap<RaftBatch, string>()

/** A batch's identity and content as one string. */
export function fingerprint(batch: RaftBatch): string {
  let print = fingerprints.get(batch)
  if (print === undefined) {
    print =
      batch.type === 'data'
        ? `${batch.epoch}:d:${batch.records.map((record) => record.toString()).join(',')}`
        : `${batch.epoch}:l:${batch.leaderChange.leaderId}`
    fingerprints.set(batch, print)
  }
  return print
}

/** Index of the first batch that ends after `offset` (binary search). */
function firstEndingAfter(batches: readonly RaftBatch[], offset: bigint): number {
  let low = 0
  let high = batches.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (batchEndOffset(batches[mid]!) <= offset) low = mid + 1
    else high = mid
  }
  return low
}

export class RaftChecker implements StateMachineObserver {
  /** epoch -> the node seen leading it */
  readonly leaders = new Map<number, number>()
  /** base offset -> every batch known committed, with the lowest epoch a node saw it committed in */
  private readonly committed = new Map<bigint, { print: string; end: bigint; epoch: number }>()
  /** `${baseOffset}:${epoch}` -> fingerprint of every batch seen in any log */
  private readonly entries = new Map<string, string>()
  /** offset -> value of every record applied or restored anywhere */
  private readonly history = new Map<bigint, string>()
  /** Per node object: how far its committed batches were recorded. */
  private readonly recordedTo = new WeakMap<RaftNode, bigint>()

  fail(message: string): never {
    throw new SafetyViolation(message)
  }

  /** Checks a node after it stepped. */
  observe(node: RaftNode): void {
    const id = node.nodeId
    const hw = node.highWatermark
    const applied = node.appliedOffset
    if (applied < node.logStartOffset)
      this.fail(`node ${id} applied offset ${applied} is below its log start ${node.logStartOffset}`)
    if (hw !== null) {
      if (applied > hw) this.fail(`node ${id} applied offset ${applied} is above its high watermark ${hw}`)
      if (hw > node.logEndOffset) this.fail(`node ${id} high watermark ${hw} is above its log end ${node.logEndOffset}`)
    }
    if (node.role === 'Leader') {
      const known = this.leaders.get(node.epoch)
      if (known === undefined) {
        this.leaders.set(node.epoch, id)
        this.checkLeaderCompleteness(node)
      } else if (known !== id) {
        this.fail(`epoch ${node.epoch} has two leaders: ${known} and ${id}`)
      }
    }
    if (hw !== null) this.recordCommitted(node, hw)
  }

  private recordCommitted(node: RaftNode, hw: bigint): void {
    const from = this.recordedTo.get(node) ?? node.logStartOffset
    if (hw <= from) return
    const batches = node.entries()
    for (let i = firstEndingAfter(batches, from); i < batches.length; i++) {
      const batch = batches[i]!
      const end = batchEndOffset(batch)
      if (end > hw) break
      const print = fingerprint(batch)
      const known = this.committed.get(batch.baseOffset)
      if (known === undefined) this.committed.set(batch.baseOffset, { print, end, epoch: node.epoch })
      else if (known.print !== print) {
        this.fail(`committed batch at ${batch.baseOffset} changed: ${known.print} -> ${print} (node ${node.nodeId})`)
      } else if (node.epoch < known.epoch) known.epoch = node.epoch
    }
    this.recordedTo.set(node, hw)
  }

  private checkLeaderCompleteness(node: RaftNode): void {
    const log = {
      nodeId: node.nodeId,
      lastEpoch: -1,
      endOffset: node.logEndOffset,
      logStartOffset: node.logStartOffset,
      batches: node.entries(),
    }
    this.checkHoldsCommitted(`leader ${node.nodeId} of epoch ${node.epoch}`, log, node.epoch)
  }

  /** The log holds every committed batch (every one committed in an epoch before `beforeEpoch`, if given). */
  private checkHoldsCommitted(who: string, log: VoterLog, beforeEpoch = Infinity): void {
    const batches = new Map(log.batches.map((batch) => [batch.baseOffset, batch]))
    for (const [offset, { print, end, epoch }] of this.committed) {
      if (epoch >= beforeEpoch || end <= log.logStartOffset) continue
      const batch = batches.get(offset)
      if (!batch || fingerprint(batch) !== print) {
        this.fail(
          `${who} lacks committed batch ${print} at ${offset} (its log: [${log.logStartOffset}, ${log.endOffset}))`,
        )
      }
    }
  }

  /** Every voter that could win an election on its log holds every committed batch. */
  checkElectableVoters(voters: readonly VoterLog[]): void {
    const end = (log: VoterLog): { epoch: number; offset: bigint } => ({ epoch: log.lastEpoch, offset: log.endOffset })
    for (const candidate of voters) {
      const wouldGrant = voters.filter((voter) => compareLogEnds(end(candidate), end(voter)) >= 0).length
      if (wouldGrant >= majority(voters.length))
        this.checkHoldsCommitted(`electable voter ${candidate.nodeId}`, candidate)
    }
  }

  /** Log matching over the live nodes, pairwise. */
  checkLogMatching(nodes: readonly RaftNode[]): void {
    for (const node of nodes) {
      for (const batch of node.entries()) {
        const key = `${batch.baseOffset}:${batch.epoch}`
        const print = fingerprint(batch)
        const known = this.entries.get(key)
        if (known === undefined) this.entries.set(key, print)
        else if (known !== print)
          this.fail(`offset ${batch.baseOffset} epoch ${batch.epoch} holds two batches: ${known} and ${print}`)
      }
    }
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) this.checkPair(nodes[i]!, nodes[j]!)
    }
  }

  private checkPair(a: RaftNode, b: RaftNode): void {
    const left = a.entries()
    const byOffset = new Map(b.entries().map((batch) => [batch.baseOffset, batch]))
    // The last entry both logs hold with the same epoch: everything before it, in both logs, must be the same.
    let i = left.length - 1
    while (i >= 0 && byOffset.get(left[i]!.baseOffset)?.epoch !== left[i]!.epoch) i--
    for (; i >= 0; i--) {
      const ours = left[i]!
      if (ours.baseOffset < b.logStartOffset) break
      const theirs = byOffset.get(ours.baseOffset)
      if (!theirs || fingerprint(theirs) !== fingerprint(ours)) {
        this.fail(`logs of nodes ${a.nodeId} and ${b.nodeId} match at a later entry but differ at ${ours.baseOffset}`)
      }
    }
  }

  applied(records: readonly AppliedRecord[], from: RecordingStateMachine): void {
    this.agree(records, from, 'applied')
  }

  restored(records: readonly AppliedRecord[], from: RecordingStateMachine): void {
    this.agree(records, from, 'restored')
  }

  private agree(records: readonly AppliedRecord[], from: RecordingStateMachine, how: string): void {
    for (const record of records) {
      const known = this.history.get(record.offset)
      if (known === undefined) this.history.set(record.offset, record.value)
      else if (known !== record.value) {
        this.fail(`node ${from.nodeId} ${how} ${record.value} at ${record.offset}, where the history has ${known}`)
      }
    }
  }

  /** Each state machine holds exactly the history up to its last record (nothing skipped, nothing extra). */
  checkPrefixes(machines: readonly RecordingStateMachine[]): void {
    const offsets = [...this.history.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    for (const machine of machines) {
      const last = machine.records.at(-1)
      if (!last) continue
      const expected = offsets.filter((offset) => offset <= last.offset)
      if (
        expected.length !== machine.records.length ||
        expected.some((offset, i) => machine.records[i]!.offset !== offset)
      ) {
        this.fail(
          `node ${machine.nodeId} applied ${machine.records.length} records up to ${last.offset}, ` +
            `the history has ${expected.length}`,
        )
      }
    }
  }

  /** Committed batches known so far (for reports). */
  get committedBatches(): number {
    return this.committed.size
  }
}

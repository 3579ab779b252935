/**
 * The ISR changes a node's partition leaders ask of the active controller, sent as Kafka's AlterPartitionManager
 * sends them (KIP-497): at most one AlterPartition (v2) in flight from this node, and every change asked meanwhile
 * goes out together in the next one, one request for all its partitions, so a node that takes back the ISR of a
 * thousand partitions at once sends a handful of requests rather than a thousand.
 *
 *   submit(change) ──> unsent (one per partition; a newer change of a partition replaces an unsent older one,
 *        │                     which is answered OPERATION_NOT_ATTEMPTED)
 *        └─ nothing in flight? ──> flush at the end of this turn: all unsent as one request ──> answers by partition
 *                                   └─ answered or given up ──> flush again if more came meanwhile
 *
 * When this node is the active controller at flush time, each change runs in process (the quorum runner writes
 * changes asked together in one step). A request the controller could not be asked (its channel's window passed, no
 * controller known) answers every change in it REQUEST_TIMED_OUT, and an error for the whole request (NOT_CONTROLLER,
 * STALE_BROKER_EPOCH, BROKER_ID_NOT_REGISTERED) answers each change with that code: the replica manager decides what
 * each means for its partition.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { alterPartition, type AlterPartitionRequestTopicData, type AlterPartitionResponse } from '../../protocol/messages/alter-partition.js'
import type { QuorumRunner } from './quorum-runner.js'

/** One partition's ISR change, as its leader asks it: the state it was asked at and the ISR it wants. */
export interface IsrChange {
  readonly topicId: string
  readonly partitionIndex: number
  readonly leaderEpoch: number
  readonly partitionEpoch: number
  readonly newIsr: readonly number[]
}

/**
 * The controller's answer to one ISR change: the partition's leader, leader epoch, ISR and partition epoch after it,
 * or an error code (the other fields then -1 / empty).
 */
export interface IsrChangeAnswer {
  readonly errorCode: number
  readonly leaderId: number
  readonly leaderEpoch: number
  readonly isr: readonly number[]
  readonly partitionEpoch: number
}

export interface AlterPartitionManagerOptions {
  readonly nodeId: number
  readonly quorum: QuorumRunner
  /** This node's broker epoch, read when a request goes out (null until registered: its changes are STALE_BROKER_EPOCH). */
  readonly brokerEpoch: () => bigint | null
  /** Why a request failed, for the debug log. */
  readonly onRequestFailed: (message: string) => void
}

interface Unsent {
  readonly change: IsrChange
  readonly resolve: (answer: IsrChangeAnswer) => void
}

/** What an ISR change is answered when it was not asked at all or got no answer of its own. */
function refused(errorCode: number): IsrChangeAnswer {
  return { errorCode, leaderId: -1, leaderEpoch: -1, isr: [], partitionEpoch: -1 }
}

const keyOf = (topicId: string, partitionIndex: number): string => `${topicId}:${partitionIndex}`

/** AlterPartition version sent: topic ids and newIsr (v2; v3's broker epochs per member are not sent). */
const ALTER_PARTITION_VERSION = 2

export class AlterPartitionManager {
  private readonly unsent = new Map<string, Unsent>()
  private inFlight = false
  private flushScheduled = false

  constructor(private readonly options: AlterPartitionManagerOptions) {}

  /**
   * Asks for `change`; resolves with the controller's answer for its partition (never rejects). An unsent change of
   * the same partition is dropped for this one, and answered OPERATION_NOT_ATTEMPTED.
   */
  submit(change: IsrChange): Promise<IsrChangeAnswer> {
    return new Promise((resolve) => {
      const key = keyOf(change.topicId, change.partitionIndex)
      this.unsent.get(key)?.resolve(refused(ErrorCode.OPERATION_NOT_ATTEMPTED))
      this.unsent.set(key, { change, resolve })
      this.scheduleFlush()
    })
  }

  /** The changes asked in this turn of the event loop go out together, after it. */
  private scheduleFlush(): void {
    if (this.inFlight || this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      void this.flush()
    })
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.unsent.size === 0) return
    const batch = [...this.unsent.values()]
    this.unsent.clear()
    this.inFlight = true
    try {
      const brokerEpoch = this.options.brokerEpoch()
      if (brokerEpoch === null) {
        for (const { resolve } of batch) resolve(refused(ErrorCode.STALE_BROKER_EPOCH))
      } else if (this.options.quorum.leaderId === this.options.nodeId) {
        await Promise.all(batch.map(({ change, resolve }) => this.alterInProcess(change, brokerEpoch).then(resolve)))
      } else {
        await this.send(batch, brokerEpoch)
      }
    } finally {
      this.inFlight = false
      if (this.unsent.size > 0) this.scheduleFlush()
    }
  }

  private async alterInProcess(change: IsrChange, brokerEpoch: bigint): Promise<IsrChangeAnswer> {
    try {
      const result = await this.options.quorum.alterPartition({ brokerId: this.options.nodeId, brokerEpoch, ...change })
      return result.ok ? { errorCode: ErrorCode.NONE, leaderId: result.leaderId, leaderEpoch: result.leaderEpoch, isr: result.isr, partitionEpoch: result.partitionEpoch } : refused(result.errorCode)
    } catch (error) {
      this.options.onRequestFailed((error as Error).message)
      return refused(ErrorCode.REQUEST_TIMED_OUT)
    }
  }

  /** One AlterPartition for `batch` to the active controller's listener; every change of it is answered. */
  private async send(batch: readonly Unsent[], brokerEpoch: bigint): Promise<void> {
    const topics = new Map<string, AlterPartitionRequestTopicData>()
    for (const { change } of batch) {
      let topic = topics.get(change.topicId)
      if (!topic) topics.set(change.topicId, (topic = { topicName: '', topicId: change.topicId, partitions: [] }))
      topic.partitions.push({ partitionIndex: change.partitionIndex, leaderEpoch: change.leaderEpoch, newIsr: [...change.newIsr], newIsrWithEpochs: [], leaderRecoveryState: 0, partitionEpoch: change.partitionEpoch })
    }
    const body = { brokerId: this.options.nodeId, brokerEpoch, topics: [...topics.values()] }
    let response: AlterPartitionResponse
    try {
      // The 'internal' channel's short window: a give-up is an outcome unknown, which the replica manager asks again
      // after a backoff from the replica's state then (CONTROLLER_CHANNELS).
      response = await this.options.quorum.requestActiveController<AlterPartitionResponse>(alterPartition, ALTER_PARTITION_VERSION, body, { channel: 'internal' })
    } catch (error) {
      this.options.onRequestFailed((error as Error).message)
      for (const { resolve } of batch) resolve(refused(ErrorCode.REQUEST_TIMED_OUT))
      return
    }
    const answers = new Map<string, IsrChangeAnswer>()
    for (const topic of response.topics) {
      for (const p of topic.partitions) {
        answers.set(keyOf(topic.topicId ?? '', p.partitionIndex), { errorCode: p.errorCode, leaderId: p.leaderId, leaderEpoch: p.leaderEpoch, isr: p.isr, partitionEpoch: p.partitionEpoch })
      }
    }
    for (const { change, resolve } of batch) {
      // An error for the whole request answers every change with it; a partition the answer leaves out is an answer
      // that could not be read (Kafka's AlterPartitionManager fails such a partition with UNKNOWN_SERVER_ERROR).
      if (response.errorCode !== ErrorCode.NONE) resolve(refused(response.errorCode))
      else resolve(answers.get(keyOf(change.topicId, change.partitionIndex)) ?? refused(ErrorCode.UNKNOWN_SERVER_ERROR))
    }
  }
}

/**
 * Sends that kafkajs 2.2.4 can neither cut short silently nor write twice. It sends each broker its partitions' batches
 * of one send, and retries a failed request only to brokers that have not answered yet (producer/sendMessages.js,
 * brokersWithoutResponse):
 * - when a partition's leader dies and its leadership moves to a broker that has already answered the same send for
 *   other partitions, that partition's batch is never sent again, and `send` resolves as if it had been written. A
 *   transaction would then commit without those records;
 * - when one broker's request fails while another's is still in flight, the retry sends the other's batches again
 *   once that request returns, under new sequence numbers, and they are written twice (`sendPerPartition`).
 * So the runner and the simulator place every message on its partition themselves (where kafkajs's default
 * partitioner would: `keyPartition` for a keyed message, kafkajs's own round robin for one without a key), send each partition's messages as a send of their own (`sendPerPartition`), which
 * rules out both, and still check that the answer names each partition written to. In the runner a send whose answer
 * misses one fails (`IncompleteSendError`), which aborts the transaction (exactly_once) or fails the commit
 * (at_least_once), and the task redoes the work from its last commit; the simulator sends those messages again
 * (`unanswered`).
 */
import kafkajs, { type Admin, type Message, type PartitionMetadata, type RecordMetadata } from 'kafkajs'
import { keyPartition } from './key-partition.js'

const { Partitioners } = kafkajs

/** A send whose answer did not name every partition the send wrote to (see the file comment). */
export class IncompleteSendError extends Error {
  constructor(missing: readonly string[]) {
    super(`the cluster's answer to a send named no result for ${missing.join(', ')} (kafkajs drops a partition whose leader moved during the send); the work is redone from the last commit`)
    this.name = 'IncompleteSendError'
  }
}

export class WholeSends {
  private readonly partitioner = Partitioners.DefaultPartitioner()
  /** Each topic's partitions as kafkajs's partitioner takes them (every one with a leader: the count is what matters). */
  private readonly metadata = new Map<string, PartitionMetadata[]>()

  constructor(private readonly admin: Admin) {}

  /**
   * Learns the partition counts of `topics` (Metadata through the admin client), asking again for up to 10 s while a
   * topic shows no partitions yet (created a moment ago); rejects when the cluster does not answer or a topic still
   * has none.
   */
  async learn(topics: readonly string[]): Promise<void> {
    for (let delayMs = 50; ; delayMs *= 2) {
      const unknown = topics.filter((topic) => !this.metadata.has(topic))
      if (unknown.length === 0) return
      const { topics: found } = await this.admin.fetchTopicMetadata({ topics: unknown })
      for (const topic of found) {
        if (topic.partitions.length === 0) continue
        this.metadata.set(topic.name, topic.partitions.map((p) => ({ partitionErrorCode: 0, partitionId: p.partitionId, leader: 0, replicas: [], isr: [] })))
      }
      if (delayMs > 5000) throw new Error(`${unknown.filter((topic) => !this.metadata.has(topic)).join(', ')}: no partitions in the cluster's metadata`)
      if (unknown.some((topic) => !this.metadata.has(topic))) await new Promise((resolve) => setTimeout(resolve, delayMs))
    }
  }

  /**
   * Gives every message of `topicMessages` its partition (a message that has one keeps it) and returns, for
   * `check`, the `topic-partition` names the send writes to. The topics' partition counts must have been learnt.
   */
  place(topicMessages: readonly { topic: string; messages: Message[] }[]): Set<string> {
    const targets = new Set<string>()
    for (const { topic, messages } of topicMessages) {
      const partitionMetadata = this.metadata.get(topic)
      if (!partitionMetadata) throw new Error(`${topic}: its partitions are not known (WholeSends.learn)`)
      for (const message of messages) {
        if (message.partition === undefined || message.partition === null) {
          // A keyed message's partition is Kafka's murmur2 of its key, as kafkajs's DefaultPartitioner computes it;
          // a message without a key gets kafkajs's round robin.
          message.partition = message.key === null || message.key === undefined
            ? this.partitioner({ topic, partitionMetadata, message })
            : keyPartition(message.key, partitionMetadata.length)
        }
        targets.add(`${topic}-${message.partition}`)
      }
    }
    return targets
  }

  /** Throws IncompleteSendError when `answer` names no result for one of `targets` (as `place` returned them). */
  check(targets: ReadonlySet<string>, answer: readonly RecordMetadata[]): void {
    const answered = answeredPartitions(answer)
    const missing = [...targets].filter((target) => !answered.has(target))
    if (missing.length > 0) throw new IncompleteSendError(missing)
  }
}

/**
 * Sends `topicMessages` (every message with its partition set, as `WholeSends.place` leaves them) as one kafkajs send
 * per topic-partition, all started at once; resolves with their answers once every one has settled, or rejects with
 * the first failure, also only once every one has settled (so that nothing of the send is still in flight when the
 * caller aborts a transaction over it). In a partition the messages keep their order.
 *
 * Why one partition a send: kafkajs 2.2.4 sends each broker its partitions' batches of one send and, when any of
 * those requests fails, retries at once with the brokers that have not answered yet (producer/sendMessages.js:
 * `Promise.all` rejects at the first failure, and `brokersWithoutResponse` includes a request still in flight). The
 * retry's request to a broker whose first request is still in flight waits for it (kafkajs's per-broker lock), then
 * sends the same batches again under the sequence numbers after them, and the leader writes them again: a leader
 * that dies while another is slow to answer (acks=all waiting for the dead node to leave the ISR) had a transaction
 * commit the same output two to four times. A send to one partition has one request per attempt, so its retry never
 * overlaps an earlier request (and kafkajs cannot cut it short either, see the file comment).
 */
export async function sendPerPartition(
  send: (topicMessages: { topic: string; messages: Message[] }[]) => Promise<RecordMetadata[]>,
  topicMessages: readonly { topic: string; messages: Message[] }[],
): Promise<RecordMetadata[]> {
  const sends: { topic: string; messages: Message[] }[] = []
  for (const { topic, messages } of topicMessages) {
    const byPartition = new Map<number | undefined, Message[]>()
    for (const message of messages) {
      const part = byPartition.get(message.partition)
      if (part) part.push(message)
      else byPartition.set(message.partition, [message])
    }
    for (const part of byPartition.values()) sends.push({ topic, messages: part })
  }
  const settled = await Promise.allSettled(sends.map((one) => send([one])))
  const failed = settled.find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
  return settled.flatMap((result) => (result.status === 'fulfilled' ? result.value : []))
}

/** `topic-partition` of each result of a send's answer. */
function answeredPartitions(answer: readonly RecordMetadata[]): Set<string> {
  return new Set(answer.map((r) => `${r.topicName}-${r.partition}`))
}

/**
 * The messages of `topicMessages` (each with its partition set, by `WholeSends.place` or by the caller) whose
 * partition `answer` names no result for: those a producer with no transaction to abort sends again (the simulator's,
 * idempotent, so a resend of a batch that did arrive is answered as a duplicate).
 */
export function unanswered(topicMessages: readonly { topic: string; messages: Message[] }[], answer: readonly RecordMetadata[]): { topic: string; messages: Message[] }[] {
  const answered = answeredPartitions(answer)
  return topicMessages.map(({ topic, messages }) => ({ topic, messages: messages.filter((m) => !answered.has(`${topic}-${m.partition}`)) })).filter((t) => t.messages.length > 0)
}

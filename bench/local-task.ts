/**
 * A Task of the processor driven in this process as the runner drives it, with no Kafka: records one at a time, due
 * windows closed between them in the runner's chunks (committing when the runner would), and commits that encode the
 * changelog records and write them to the task's LevelDB only. For the benches that time or weigh a task's own work.
 */
import type { KafkaMessage } from 'kafkajs'
import { commitMessages } from '../processor/runtime/changelog.js'
import { CLOSE_CHUNK_GROUPS } from '../processor/runtime/runner.js'
import type { Task } from '../processor/runtime/task.js'

export class LocalTask {
  /** Changelog records (state changes, not markers) the commits wrote. */
  changelogRecords = 0
  private checkpoint = 0

  constructor(readonly task: Task) {}

  /** Processes one record, then closes the windows it made due; synchronous when it waits for nothing. */
  process(message: KafkaMessage): void | Promise<void> {
    const pending = this.task.process(message)
    if (pending) return this.afterPending(pending)
    if (this.task.hasDue) return this.closeDue()
  }

  private async afterPending(pending: Promise<void>): Promise<void> {
    await pending
    if (this.task.hasDue) await this.closeDue()
  }

  private async closeDue(): Promise<void> {
    while (this.task.hasDue) {
      await this.task.closeDue(CLOSE_CHUNK_GROUPS)
      if (this.task.commitIsLarge) await this.commit()
    }
  }

  /** A commit: encodes what changed (results and changelog records, dropped) and writes it to the task's store. */
  async commit(): Promise<void> {
    this.task.markActive(Date.now())
    const prepared = await this.task.prepareCommit()
    const changelog = commitMessages({ ...prepared, marker: prepared.marker! }, 0)
    this.changelogRecords += changelog.records.length
    this.checkpoint += changelog.records.length + 1
    await this.task.committed(prepared, this.checkpoint)
  }
}

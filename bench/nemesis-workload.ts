/**
 * The clients of bench/nemesis.ts and what they saw: a history of acknowledged writes and live reads, checked at the
 * end against the topics read whole.
 *
 *   kafkajs producers ×3 (idempotent, acks=-1, one partition per send) ──┐
 *   kcat producer (acks=all, enable.idempotence, 10 records a run) ──────┼──▶ topic `nemesis` (6 partitions, RF 3)
 *   live consumer group (kafkajs, from the beginning) ◀──────────────────┘
 *   transactional producer (kafkajs, 3 records over 3 partitions, 70 % commit, 30 % abort) ──▶ `nemesis-txn` (3, RF 3)
 *
 * Invariants the check holds the cluster to, on the topics read whole with kcat once the cluster has settled (the
 * first two through bench/history.ts, the fault tests' history checker):
 *   - every acknowledged record is there: at the offset its acknowledgement named (kafkajs), or at least in the
 *     partition it was sent to (kcat does not say the offset);
 *   - no value appears twice, and offsets only grow within a partition;
 *   - what the live consumer read is in the final log at the offset it read it from, and it never read past a record
 *     of the final log (a poll skip);
 *   - under read_committed, every value of a committed transaction is read once and none of an aborted one.
 * A send whose outcome is unknown (an error or a timeout) is neither acknowledged nor required: it may be there once.
 * A record's value is `<id>` followed by `--pad` bytes of padding after a space; only the id is compared.
 */
import { spawn } from 'node:child_process'
import kafkajs, { type Kafka, type KafkaConfig } from 'kafkajs'
import { History } from './history.js'

export const TOPIC = 'nemesis'
export const TXN_TOPIC = 'nemesis-txn'
export const PARTITIONS = 6
export const TXN_PARTITIONS = 3
/** An acknowledgement this long after the one before counts as a gap in the summary's `longestAckGapMs`. */
const ACK_GAP_MS = 2000

/** The live consumer's group id in a run of `seed`. */
export const liveGroupId = (seed: number): string => `nemesis-live-${seed}`
/** The transactional producer's transactional id in a run of `seed`. */
export const transactionalId = (seed: number): string => `nemesis-txn-${seed}`

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))
const idOf = (value: string): string => value.split(' ')[0]!

export interface WorkloadOptions {
  /** `host:port` of every node. */
  bootstrap: readonly string[]
  /** Names the transactional id and the consumer groups, so that runs do not share them. */
  seed: number
  /** Bytes of padding appended to each produced value. */
  padBytes: number
  /** Where a client's notable trouble (the live consumer's crash) is told. */
  log: (line: string) => void
}

/** The exit of a kcat run: its code (or the signal that ended it), stdout and stderr. */
interface KcatResult {
  code: number | string | null
  stdout: string
  stderr: string
}

/** Runs kcat with `args`, `input` on its stdin, killed after `timeoutMs` (or when this process exits). */
export function runKcat(args: readonly string[], input: string, timeoutMs: number): Promise<KcatResult> {
  return new Promise((resolve) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const killOnExit = (): void => void child.kill('SIGKILL')
    process.once('exit', killOnExit)
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      process.removeListener('exit', killOnExit)
      resolve({ code: signal ?? code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(input)
  })
}

/** A quiet kafkajs client of the cluster with short timeouts, so that a client notices a fault within seconds. */
export function quietKafka(bootstrap: readonly string[], clientId: string, retry: KafkaConfig['retry'] = {}): Kafka {
  return new kafkajs.Kafka({
    clientId,
    brokers: [...bootstrap],
    logLevel: kafkajs.logLevel.NOTHING,
    requestTimeout: 5000,
    connectionTimeout: 3000,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 10, ...retry },
  })
}

/** The final check's figures (the summary's), and every violation found, one line each. */
export interface CheckResult {
  readBack: number
  lost: number
  duplicates: number
  orderViolations: number
  staleLiveReads: number
  pollSkips: number
  txnLost: number
  txnDuplicates: number
  abortedRead: number
  probeSeen: boolean
  violations: string[]
}

/**
 * The producers, the transactional producer and the live consumer, from `start()` until `stop()`, and the history
 * they leave. Violations seen while running (an offset acknowledged twice for two values, a live read that changed)
 * go to `violations` at once; `check()` adds those of the final reads.
 */
export class Workload {
  /** The acknowledged records (the kafkajs producers' at their offsets, kcat's in their partitions), and the final reads. */
  private readonly history = new History()
  /** Records acknowledged to the kafkajs producers, and to kcat. */
  kafkajsAcknowledged = 0
  kcatAcknowledged = 0
  /** `writer/partition` -> the last offset acknowledged to that writer. */
  private readonly lastAckedOffset = new Map<string, bigint>()
  /** `partition/offset` -> value id, as the live consumer read it. */
  private readonly liveReads = new Map<string, string>()
  /** partition -> offsets in the order the live consumer read them. */
  private readonly liveSequence = new Map<number, bigint[]>()
  /** Ids of the records of committed transactions, and of aborted ones. */
  readonly txnCommitted: string[] = []
  readonly txnAborted: string[] = []
  /** Why transactions failed, with how often. */
  readonly txnErrors = new Map<string, number>()
  readonly violations: string[] = []
  /** Acknowledgements that named an offset below one an earlier acknowledgement to the same producer named. */
  private ackOrderViolations = 0
  sent = 0
  notAcknowledged = 0
  txnUnknown = 0
  liveReadCount = 0
  liveGroupJoins = 0
  longestAckGapMs = 0
  private lastAckMs = Date.now()
  private stopping = false
  private running: Promise<void>[] = []
  private readonly padding: string

  constructor(private readonly options: WorkloadOptions) {
    this.padding = ' ' + '.'.repeat(options.padBytes)
  }

  /** Records acknowledged so far. */
  get acknowledged(): number {
    return this.history.acknowledgedCount
  }

  /** Starts every client; they retry through faults until `stop()`. */
  start(): void {
    this.running = [1, 2, 3].map((n) => this.kafkajsProducer(n))
    this.running.push(this.kcatProducer(), this.transactionalProducer(), this.liveConsumer())
  }

  /** Stops every client, waiting `timeoutMs` at most for the last sends to end. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true
    await Promise.race([Promise.all(this.running), sleep(timeoutMs)])
  }

  private noteAck(): void {
    const now = Date.now()
    if (now - this.lastAckMs > ACK_GAP_MS) this.longestAckGapMs = Math.max(this.longestAckGapMs, now - this.lastAckMs)
    this.lastAckMs = now
  }

  private ackPlaced(writer: string, partition: number, baseOffset: bigint, ids: readonly string[]): void {
    this.noteAck()
    const previous = this.lastAckedOffset.get(`${writer}/${partition}`)
    if (previous !== undefined && baseOffset <= previous) {
      this.ackOrderViolations++
      this.violations.push(`order: ${writer} was acknowledged ${partition}/${baseOffset} after ${partition}/${previous}`)
    }
    this.lastAckedOffset.set(`${writer}/${partition}`, baseOffset + BigInt(ids.length - 1))
    this.history.acknowledge(TOPIC, partition, baseOffset, ids)
    this.kafkajsAcknowledged += ids.length
  }

  /** Sends 1-5 records to one random partition at a time; after any failure, a new producer (a new producer id). */
  private async kafkajsProducer(n: number): Promise<void> {
    let seq = 0
    while (!this.stopping) {
      const producer = quietKafka(this.options.bootstrap, `nemesis-p${n}`, { retries: 30 }).producer({ idempotent: true, maxInFlightRequests: 1 })
      try {
        await producer.connect()
        while (!this.stopping) {
          const partition = Math.floor(Math.random() * PARTITIONS)
          const ids = Array.from({ length: 1 + Math.floor(Math.random() * 5) }, () => `j${n}-${seq++}`)
          this.sent += ids.length
          try {
            const answer = await producer.send({ topic: TOPIC, acks: -1, timeout: 10_000, messages: ids.map((id) => ({ value: id + this.padding, partition })) })
            const mine = answer.find((r) => r.partition === partition)
            if (mine === undefined || mine.errorCode !== 0 || mine.baseOffset === undefined) {
              this.notAcknowledged += ids.length
              this.violations.push(`kafkajs send answered without partition ${partition}: ${JSON.stringify(answer)}`)
              continue
            }
            this.ackPlaced(`kafkajs${n}`, partition, BigInt(mine.baseOffset), ids)
          } catch {
            // The failed send's outcome is unknown; the next producer id starts afresh.
            this.notAcknowledged += ids.length
            await sleep(200)
            break
          }
          await sleep(20)
        }
      } catch {
        await sleep(500)
      } finally {
        await producer.disconnect().catch(() => {})
      }
    }
  }

  /** Runs kcat again and again, 10 records to one random partition each time, acks=all and idempotent. */
  private async kcatProducer(): Promise<void> {
    for (let run = 0; !this.stopping; run++) {
      const partition = Math.floor(Math.random() * PARTITIONS)
      const ids = Array.from({ length: 10 }, (_, i) => `k-${run}-${i}`)
      this.sent += ids.length
      const args = ['-P', '-b', this.options.bootstrap.join(','), '-t', TOPIC, '-p', String(partition), '-X', 'acks=all', '-X', 'enable.idempotence=true', '-X', 'message.timeout.ms=30000', '-X', 'request.timeout.ms=5000']
      const result = await runKcat(args, ids.map((id) => id + this.padding).join('\n') + '\n', 60_000)
      if (result.code === 0) {
        this.noteAck()
        this.history.acknowledgeUnplaced(TOPIC, partition, ids)
        this.kcatAcknowledged += ids.length
      } else {
        this.notAcknowledged += ids.length
        await sleep(300)
      }
    }
  }

  /** Transactions of 3 records over the 3 partitions of the transactions' topic; 70 % commit, the rest abort. */
  private async transactionalProducer(): Promise<void> {
    let n = 0
    for (let incarnation = 1; !this.stopping; incarnation++) {
      const producer = quietKafka(this.options.bootstrap, 'nemesis-txn', { retries: 20 }).producer({
        transactionalId: transactionalId(this.options.seed),
        idempotent: true,
        maxInFlightRequests: 1,
        transactionTimeout: 20_000,
      })
      try {
        await producer.connect()
        while (!this.stopping) {
          const ids = Array.from({ length: 3 }, (_, i) => `t${incarnation}-${n}-${i}`)
          n++
          const commit = Math.random() < 0.7
          const txn = await producer.transaction().catch((error: unknown) => error as Error)
          try {
            if (txn instanceof Error) throw txn
            for (const [i, id] of ids.entries()) await txn.send({ topic: TXN_TOPIC, acks: -1, timeout: 10_000, messages: [{ value: id, partition: (n + i) % TXN_PARTITIONS }] })
            if (commit) {
              await txn.commit()
              this.txnCommitted.push(...ids)
            } else {
              await txn.abort()
              this.txnAborted.push(...ids)
            }
          } catch (error) {
            this.txnUnknown += ids.length
            this.countTxnError('', error)
            if (!(txn instanceof Error)) await txn.abort().catch(() => {})
            break
          }
          await sleep(100)
        }
      } catch (error) {
        this.countTxnError('connect ', error)
        await sleep(500)
      } finally {
        await producer.disconnect().catch(() => {})
      }
    }
  }

  private countTxnError(prefix: string, error: unknown): void {
    const why = `${prefix}${(error as Error).name}: ${String((error as Error).message).slice(0, 120)}`
    this.txnErrors.set(why, (this.txnErrors.get(why) ?? 0) + 1)
  }

  /** One member of a group reading the records topic from the beginning, all run long. */
  private async liveConsumer(): Promise<void> {
    const consumer = quietKafka(this.options.bootstrap, 'nemesis-live', { retries: 100 }).consumer({
      groupId: liveGroupId(this.options.seed),
      maxWaitTimeInMs: 500,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
    })
    try {
      consumer.on(consumer.events.GROUP_JOIN, () => void this.liveGroupJoins++)
      consumer.on(consumer.events.CRASH, (event) => this.options.log(`live consumer crash: ${event.payload.error.name} ${event.payload.error.message.slice(0, 150)}, restart: ${event.payload.restart}`))
      await consumer.connect()
      await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          this.liveReadCount++
          const key = `${partition}/${message.offset}`
          const id = idOf(message.value?.toString() ?? '')
          const earlier = this.liveReads.get(key)
          if (earlier !== undefined && earlier !== id) this.violations.push(`live read: ${key} read as ${earlier} and later as ${id}`)
          this.liveReads.set(key, id)
          const sequence = this.liveSequence.get(partition) ?? []
          this.liveSequence.set(partition, sequence)
          sequence.push(BigInt(message.offset))
        },
      })
      while (!this.stopping) await sleep(200)
    } catch (error) {
      this.violations.push(`the live consumer failed: ${(error as Error).message}`)
    } finally {
      await consumer.disconnect().catch(() => {})
    }
  }

  /** Reads every partition whole with kcat and checks the history against it (the invariants above). */
  async check(probe: string): Promise<CheckResult> {
    const violations = [...this.violations]
    const finalAt = new Map<string, string>()
    let readBack = 0
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const records = await this.readPartition(TOPIC, partition)
      readBack += records.length
      for (const { offset, id } of records) finalAt.set(`${partition}/${offset}`, id)
      // One pass from the start: a step back or a repeated offset is an order violation.
      this.history.consumed(TOPIC, partition, records.map(({ offset, id }) => ({ offset, value: id })), { rewinds: 'violation' })
    }
    const { lost, duplicates, orderViolations, problems } = this.history.check()
    violations.push(...problems)
    let staleLiveReads = 0
    for (const [key, id] of this.liveReads) {
      if (finalAt.get(key) === id) continue
      staleLiveReads++
      violations.push(`live read not in the final log: ${key} read as ${id}, final ${finalAt.get(key)}`)
    }
    const pollSkips = this.pollSkips(finalAt, violations)
    const committed = new Set<string>()
    let txnDuplicates = 0
    for (let partition = 0; partition < TXN_PARTITIONS; partition++) {
      for (const { id } of await this.readPartition(TXN_TOPIC, partition, ['-X', 'isolation.level=read_committed'])) {
        if (committed.has(id)) {
          txnDuplicates++
          violations.push(`transaction duplicate: ${id}`)
        }
        committed.add(id)
      }
    }
    const txnLost = this.txnCommitted.filter((id) => !committed.has(id))
    const abortedRead = this.txnAborted.filter((id) => committed.has(id))
    violations.push(...txnLost.map((id) => `committed transaction's record missing: ${id}`), ...abortedRead.map((id) => `aborted transaction's record read: ${id}`))
    const probeSeen = [...finalAt.values()].includes(probe)
    if (!probeSeen) violations.push(`the probe ${probe} is not in the final log`)
    return { readBack, lost, duplicates, orderViolations: orderViolations + this.ackOrderViolations, staleLiveReads, pollSkips, txnLost: txnLost.length, txnDuplicates, abortedRead: abortedRead.length, probeSeen, violations }
  }

  /** Times the live consumer went from one offset to a later one of the same partition past a record of the final log. */
  private pollSkips(finalAt: ReadonlyMap<string, string>, violations: string[]): number {
    let skips = 0
    for (const [partition, sequence] of this.liveSequence) {
      const offsets = [...finalAt.keys()].filter((key) => key.startsWith(`${partition}/`)).map((key) => BigInt(key.split('/')[1]!))
      offsets.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      const indexOf = new Map(offsets.map((offset, i) => [offset, i]))
      for (let i = 1; i < sequence.length; i++) {
        const [a, b] = [sequence[i - 1]!, sequence[i]!]
        // A step back is a rebalance's re-delivery (at-least-once), not a skip.
        if (b <= a) continue
        const [ia, ib] = [indexOf.get(a), indexOf.get(b)]
        if (ia === undefined || ib === undefined || ib === ia + 1) continue
        skips++
        violations.push(`poll skip: the live consumer read ${partition}/${a} then ${partition}/${b}, past ${ib - ia - 1} records of the final log`)
      }
    }
    return skips
  }

  /** Every record of one partition, from the start to its end, as kcat reads it. */
  private async readPartition(topic: string, partition: number, extra: readonly string[] = []): Promise<{ offset: bigint; id: string }[]> {
    const args = ['-C', '-b', this.options.bootstrap.join(','), '-t', topic, '-p', String(partition), '-o', 'beginning', '-e', '-q', '-f', '%o %s\\n', ...extra]
    const result = await runKcat(args, '', 120_000)
    if (result.code !== 0) throw new Error(`kcat could not read ${topic}-${partition} (${result.code}): ${result.stderr.trim()}`)
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [offset, id] = line.split(' ')
        return { offset: BigInt(offset!), id: id! }
      })
  }
}

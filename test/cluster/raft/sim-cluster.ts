/**
 * A quorum of RaftNodes on a simulated network and clock. Each node runs the loop a real node runs (feed a message
 * or a tick, drain, persist the writes, call persisted(), send the messages), with the checker looking at it after
 * every step. Faults: partitions and lossy links (sim/network.ts), crashes (the node's object is dropped; a restart
 * loads what its store holds, so whatever was drained but not written is lost, as on a real crash, optionally right
 * between drain and write), and pauses (a stopped process: messages queue, timers do not fire, then it all lands at
 * once with the clock far ahead).
 */
import { RaftNode, type ProposeResult, type RaftStateMachine } from '../../../broker/cluster/raft/node.js'
import type { RaftSnapshot } from '../../../storage/raft-store.js'
import type { RaftConfig } from '../../../broker/cluster/raft/config.js'
import type { RaftEnvelope } from '../../../broker/cluster/raft/messages.js'
import { MemoryRaftStore } from '../../../storage/raft-memory-store.js'
import { batchEndOffset, type RaftStore, type RaftWrite } from '../../../storage/raft-store.js'
import { RaftChecker, type VoterLog } from './checker.js'
import { RecordingStateMachine } from './recording-state-machine.js'
import { SimNetwork } from './sim/network.js'
import { Random } from './sim/random.js'
import { Scheduler } from './sim/scheduler.js'

/** Raft timings scaled down for simulated time (Kafka's proportions: fetch timeout 2x election timeout). */
export const SIM_RAFT_CONFIG: Partial<RaftConfig> = {
  electionTimeoutMs: 150,
  electionBackoffMaxMs: 100,
  fetchTimeoutMs: 300,
  requestTimeoutMs: 200,
  retryBackoffMs: 10,
  fetchMaxWaitMs: 50,
  fetchMaxBytes: 256,
}

export interface SimClusterOptions {
  voters: readonly number[]
  observers?: readonly number[]
  seed: number
  config?: Partial<RaftConfig>
  /** The store of each node (default: a MemoryRaftStore). */
  store?: (nodeId: number) => RaftStore
  /** Keep a trace of every message, not only of state changes and faults. */
  traceMessages?: boolean
  /**
   * A state machine to run beside each node's recording one (which the checker watches), made at each (re)start:
   * both get every call, and the snapshot holds both.
   */
  machine?: (node: SimNode) => RaftStateMachine
}

export class SimNode {
  raft: RaftNode | null = null
  machine: RecordingStateMachine | null = null
  /** The state machine of `SimClusterOptions.machine`, while the node is up. */
  extra: RaftStateMachine | null = null
  paused = false
  inbox: RaftEnvelope[] = []
  /** Crash at the next write, after the node drained it and before the store has it. */
  crashOnNextWrite = false
  incarnation = 0
  tickToken = 0

  constructor(
    readonly id: number,
    public store: RaftStore,
  ) {}

  get alive(): boolean {
    return this.raft !== null
  }
}

export class SimCluster {
  readonly scheduler = new Scheduler()
  readonly random: Random
  readonly network: SimNetwork<RaftEnvelope>
  readonly checker = new RaftChecker()
  readonly nodes = new Map<number, SimNode>()
  /** Message deliveries by message type; `divergingEpoch` and `snapshotId` count fetch responses that carry one. */
  readonly delivered = new Map<string, number>()
  readonly trace: string[] = []
  /**
   * Chance, at each of three points of every step of a node (before persisting, before sending, after sending),
   * that it crashes right there and restarts 0-60 ms later: the crash points where a member that acts on what it has
   * not persisted (a vote, an entry) would be caught.
   */
  crashPointRate = 0
  private steps = 0

  private constructor(private readonly options: SimClusterOptions) {
    this.random = new Random(options.seed)
    this.network = new SimNetwork(this.scheduler, this.random.fork(1), (destination, envelope) =>
      this.deliver(destination, envelope),
    )
    for (const id of [...options.voters, ...(options.observers ?? [])]) {
      this.nodes.set(id, new SimNode(id, options.store?.(id) ?? new MemoryRaftStore()))
    }
  }

  static async start(options: SimClusterOptions): Promise<SimCluster> {
    const cluster = new SimCluster(options)
    for (const node of cluster.nodes.values()) await cluster.restart(node.id)
    return cluster
  }

  get now(): number {
    return this.scheduler.nowMs
  }

  node(id: number): SimNode {
    const node = this.nodes.get(id)
    if (!node) throw new Error(`no node ${id}`)
    return node
  }

  raft(id: number): RaftNode {
    const raft = this.node(id).raft
    if (!raft) throw new Error(`node ${id} is down`)
    return raft
  }

  /** Live, unpaused nodes that consider themselves leader, newest epoch first. */
  leaders(): RaftNode[] {
    const leaders: RaftNode[] = []
    for (const node of this.nodes.values()) if (node.raft?.role === 'Leader' && !node.paused) leaders.push(node.raft)
    return leaders.sort((a, b) => b.epoch - a.epoch)
  }

  async run(durationMs: number): Promise<void> {
    await this.scheduler.runUntil(this.now + durationMs)
  }

  /** Runs until `condition` holds (checked after every event) or `timeoutMs` passes; returns whether it held. */
  async runUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    if (condition()) return true
    await this.scheduler.runUntil(this.now + timeoutMs, condition)
    return condition()
  }

  /** Proposes string values as one batch on `id`; null if the node is down or paused. */
  async propose(id: number, values: readonly string[]): Promise<ProposeResult | null> {
    const node = this.node(id)
    if (!node.raft || node.paused) return null
    let result: ProposeResult | null = null
    await this.step(node, (raft) => {
      result = raft.propose(
        values.map((value) => Buffer.from(value)),
        this.now,
      )
    })
    const proposed = result as ProposeResult | null
    if (proposed?.ok) this.note(`n${id} proposed [${values.join(',')}] at ${proposed.baseOffset} e${proposed.epoch}`)
    return proposed
  }

  /** One call into a node's RaftNode (and what it drains); null if the node is down or paused. */
  async act<T>(id: number, call: (raft: RaftNode) => T): Promise<T | null> {
    const node = this.node(id)
    if (!node.raft || node.paused) return null
    let result: { value: T } | null = null
    await this.step(node, (raft) => {
      result = { value: call(raft) }
    })
    return (result as { value: T } | null)?.value ?? null
  }

  async resign(id: number): Promise<void> {
    const node = this.node(id)
    if (node.raft && !node.paused) await this.step(node, (raft) => raft.resign(this.now))
  }

  crash(id: number, options: { duringWrite?: boolean } = {}): void {
    const node = this.node(id)
    if (!node.raft) return
    if (options.duringWrite) {
      node.crashOnNextWrite = true
      return
    }
    this.note(`n${id} crashed`)
    node.raft = null
    node.machine = null
    node.extra = null
    node.paused = false
    node.inbox = []
    node.crashOnNextWrite = false
    node.tickToken++
    this.network.reset(id)
  }

  /** Crashes the node now and restarts it 0-60 ms later, unless it was restarted (and maybe crashed) meanwhile. */
  bounce(id: number): void {
    const node = this.node(id)
    if (!node.raft) return
    this.crash(id)
    const incarnation = node.incarnation
    this.scheduler.after(this.random.int(0, 60), () =>
      node.incarnation === incarnation ? this.restart(id) : undefined,
    )
  }

  /** Starts a crashed (or not yet started) node from what its store (or `options.store`, its data reopened) holds. */
  async restart(id: number, options: { store?: RaftStore } = {}): Promise<void> {
    const node = this.node(id)
    if (node.raft) return
    if (options.store) node.store = options.store
    node.incarnation++
    const persisted = node.store instanceof MemoryRaftStore ? node.store.loadSync() : await node.store.load()
    const machine = new RecordingStateMachine(id, this.checker)
    node.machine = machine
    node.extra = this.options.machine?.(node) ?? null
    node.raft = new RaftNode({
      nodeId: id,
      voters: this.options.voters,
      clusterId: 'sim',
      stateMachine: node.extra ? pairOf(machine, node.extra) : machine,
      random: this.random.fork(id * 1000 + node.incarnation).fn,
      persisted,
      nowMs: this.now,
      config: { ...SIM_RAFT_CONFIG, ...this.options.config },
    })
    this.note(`n${id} started (incarnation ${node.incarnation}) as ${this.describe(node.raft)}`)
    await this.step(node, () => undefined)
  }

  /** Stops the node's process: nothing it receives is handled, no timer fires, until `resume`. */
  pause(id: number): void {
    const node = this.node(id)
    if (!node.raft || node.paused) return
    node.paused = true
    node.tickToken++
    this.note(`n${id} paused`)
  }

  /**
   * Resumes the node: it reads what arrived meanwhile, then ticks. `first`, if given, runs before both as the node's
   * first step (work of its own whose timer fired while it was stopped, such as an ISR check that proposes, which a
   * resumed process may run before its Raft tick).
   */
  async resume(id: number, options: { first?: (raft: RaftNode) => void } = {}): Promise<void> {
    const node = this.node(id)
    if (!node.paused) return
    node.paused = false
    this.note(`n${id} resumed`)
    if (options.first && node.raft) await this.step(node, options.first)
    const inbox = node.inbox
    node.inbox = []
    for (const envelope of inbox) {
      if (!node.raft || node.paused) return
      await this.step(node, (raft) => raft.receive(envelope, this.now))
    }
    if (node.raft && !node.paused) await this.step(node, (raft) => raft.tick(this.now))
  }

  /** Checks across nodes: log matching, electable voters; at the end of a run, the state machines' histories. */
  checkAll(options: { final: boolean }): void {
    const live = [...this.nodes.values()].flatMap((node) => (node.raft ? [node.raft] : []))
    this.checker.checkLogMatching(live)
    const voters = this.options.voters.map((id) => this.voterLog(this.node(id)))
    if (voters.every((log) => log !== null)) this.checker.checkElectableVoters(voters)
    if (options.final)
      this.checker.checkPrefixes([...this.nodes.values()].flatMap((node) => (node.machine ? [node.machine] : [])))
  }

  /** A voter's log as an election would see it; null for a down node whose store reads only asynchronously. */
  private voterLog(node: SimNode): VoterLog | null {
    const raft = node.raft
    if (raft) {
      const batches = raft.entries()
      return {
        nodeId: node.id,
        lastEpoch: batches.at(-1)?.epoch ?? raft.latestSnapshot?.epoch ?? -1,
        endOffset: raft.logEndOffset,
        logStartOffset: raft.logStartOffset,
        batches,
      }
    }
    // A down node comes back with what it persisted.
    if (!(node.store instanceof MemoryRaftStore)) return null
    const { snapshot, batches } = node.store.loadSync()
    const last = batches.at(-1)
    return {
      nodeId: node.id,
      lastEpoch: last?.epoch ?? snapshot?.epoch ?? -1,
      endOffset: last ? batchEndOffset(last) : (snapshot?.endOffset ?? 0n),
      logStartOffset: snapshot?.endOffset ?? 0n,
      batches,
    }
  }

  note(line: string): void {
    this.trace.push(`${String(this.now).padStart(6)} ${line}`)
    if (this.trace.length > 400) this.trace.splice(0, this.trace.length - 300)
  }

  describe(raft: RaftNode): string {
    const log = `log=[${raft.logStartOffset},${raft.logEndOffset}) hw=${raft.highWatermark ?? '-'}`
    return `${raft.role} e${raft.epoch} leader=${raft.leaderId ?? '-'} ${log}`
  }

  private deliver(destination: number, envelope: RaftEnvelope): Promise<void> | void {
    const node = this.node(destination)
    if (!node.raft) return
    const message = envelope.message
    this.count(message.type)
    if (message.type === 'FetchResponse' && message.divergingEpoch) this.count('divergingEpoch')
    if (message.type === 'FetchResponse' && message.snapshotId) this.count('snapshotId')
    if (this.options.traceMessages) this.note(`n${envelope.source} -> n${destination} ${describeMessage(envelope)}`)
    if (node.paused) {
      node.inbox.push(envelope)
      return
    }
    return this.step(node, (raft) => raft.receive(envelope, this.now))
  }

  private count(key: string): void {
    this.delivered.set(key, (this.delivered.get(key) ?? 0) + 1)
  }

  /** One call into a node, then drain, persist and send, as a real node's loop does. */
  private async step(node: SimNode, call: (raft: RaftNode) => void): Promise<void> {
    const raft = node.raft!
    const before = `${raft.role}${raft.epoch}:${raft.leaderId}`
    call(raft)
    for (;;) {
      const output = raft.drain()
      if (output.writes.length > 0) {
        if (node.crashOnNextWrite || this.crashPoint(node, 'before persisting')) {
          this.note(`n${node.id} crashed with ${output.writes.length} writes not persisted`)
          if (node.crashOnNextWrite) this.crash(node.id)
          else this.bounce(node.id)
          return
        }
        await this.persist(node.store, output.writes)
        raft.persisted(this.now)
      }
      if (this.crashPoint(node, 'before sending')) return this.bounce(node.id)
      for (const envelope of output.messages) this.network.send(envelope.source, envelope.destination, envelope)
      if (output.writes.length === 0) break
    }
    if (this.crashPoint(node, 'after sending')) return this.bounce(node.id)
    if (`${raft.role}${raft.epoch}:${raft.leaderId}` !== before) this.note(`n${node.id} ${this.describe(raft)}`)
    await this.afterStep(node)
  }

  private crashPoint(node: SimNode, where: string): boolean {
    if (this.crashPointRate === 0 || !this.random.chance(this.crashPointRate)) return false
    this.note(`n${node.id} crash point ${where}`)
    return true
  }

  private persist(store: RaftStore, writes: RaftWrite[]): Promise<void> | void {
    if (store instanceof MemoryRaftStore) store.writeSync(writes)
    else return store.write(writes)
  }

  private async afterStep(node: SimNode): Promise<void> {
    const raft = node.raft
    if (!raft) return
    this.checker.observe(raft)
    if (++this.steps % 100 === 0) this.checkAll({ final: false })
    const deadline = raft.nextDeadlineMs()
    if (deadline === Infinity) return
    const token = ++node.tickToken
    this.scheduler.at(Math.max(deadline, this.now + 1), () => {
      if (node.tickToken !== token || node.raft !== raft || node.paused) return
      return this.step(node, (r) => r.tick(this.now))
    })
  }
}

/** Two state machines as one: each gets every call; the snapshot is the first's length (uint32), then both. */
function pairOf(first: RaftStateMachine, second: RaftStateMachine): RaftStateMachine {
  return {
    apply: (batch) => {
      first.apply(batch)
      second.apply(batch)
    },
    snapshot: () => {
      const a = first.snapshot()
      const length = Buffer.alloc(4)
      length.writeUInt32BE(a.length)
      return Buffer.concat([length, a, second.snapshot()])
    },
    restore: (snapshot: RaftSnapshot) => {
      const length = snapshot.data.readUInt32BE(0)
      first.restore({ ...snapshot, data: snapshot.data.subarray(4, 4 + length) })
      second.restore({ ...snapshot, data: snapshot.data.subarray(4 + length) })
    },
    leaderChange: (leader) => {
      first.leaderChange?.(leader)
      second.leaderChange?.(leader)
    },
  }
}

function describeMessage(envelope: RaftEnvelope): string {
  const m = envelope.message
  switch (m.type) {
    case 'VoteRequest':
      return `${m.preVote ? 'PreVote' : 'Vote'}(e${m.candidateEpoch} last=${m.lastOffsetEpoch}@${m.lastOffset})`
    case 'VoteResponse':
      return `VoteResponse(${m.voteGranted ? 'granted' : 'rejected'} ${leader(m.leaderId, m.leaderEpoch)})`
    case 'FetchRequest':
      return `Fetch(e${m.currentLeaderEpoch} offset=${m.fetchOffset} last=${m.lastFetchedEpoch})`
    case 'FetchResponse':
      return (
        `FetchResponse(err=${m.errorCode} hw=${m.highWatermark} batches=${m.records.length} ` +
        `diverging=${m.divergingEpoch ? `${m.divergingEpoch.epoch}@${m.divergingEpoch.endOffset}` : '-'} ` +
        `snapshot=${m.snapshotId?.endOffset ?? '-'} ${leader(m.currentLeader.leaderId, m.currentLeader.leaderEpoch)})`
      )
    default:
      return `${m.type}(${JSON.stringify(m, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))})`
  }
}

function leader(leaderId: number, epoch: number): string {
  return `leader=${leaderId} e${epoch}`
}

/**
 * A simulated network between numbered nodes, for any message type: each message is delayed, and may be lost,
 * duplicated, or blocked by a partition, all decided by the run's seeded generator.
 *
 *   send(a, b, m) ──> blocked a->b? drop ──> lost? drop ──> deliver at now + delay (and maybe once more, later)
 *
 * - Delays are drawn per message between minDelayMs and maxDelayMs, so a wide range reorders messages.
 * - Partitions block directed links, so a partition may be asymmetric (a hears b, b does not hear a). A link blocked
 *   when a message is delivered drops it too, as a cut cable would.
 * - `reset(node)` models a crash: connections to the node are gone, so messages in flight to it are dropped (a
 *   restarted node never gets a response meant for its previous incarnation); messages it sent still arrive.
 */
import type { Random } from './random.js'
import type { Scheduler } from './scheduler.js'

export interface LinkFaults {
  lossRate: number
  duplicateRate: number
  minDelayMs: number
  maxDelayMs: number
}

export const RELIABLE_LINKS: LinkFaults = { lossRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 }

export class SimNetwork<M> {
  faults: LinkFaults = { ...RELIABLE_LINKS }
  /** Messages sent, lost, duplicated and delivered. */
  readonly stats = { sent: 0, lost: 0, duplicated: 0, delivered: 0 }
  private readonly blocked = new Set<string>()
  private readonly incarnations = new Map<number, number>()

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly deliver: (destination: number, message: M) => void | Promise<void>,
  ) {}

  send(source: number, destination: number, message: M): void {
    this.stats.sent++
    if (this.isBlocked(source, destination) || this.random.chance(this.faults.lossRate)) {
      this.stats.lost++
      return
    }
    this.schedule(source, destination, message)
    if (this.random.chance(this.faults.duplicateRate)) {
      this.stats.duplicated++
      this.schedule(source, destination, message)
    }
  }

  /** Cuts the link from `source` to `destination` (one direction). */
  block(source: number, destination: number): void {
    this.blocked.add(`${source}>${destination}`)
  }

  /** Cuts every link between nodes of different groups, both ways. */
  partition(groups: readonly (readonly number[])[]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue
        for (const x of a) for (const y of b) this.block(x, y)
      }
    }
  }

  /** Restores every link. */
  heal(): void {
    this.blocked.clear()
  }

  isBlocked(source: number, destination: number): boolean {
    return this.blocked.has(`${source}>${destination}`)
  }

  /** The node crashed: what is in flight to it is lost. */
  reset(node: number): void {
    this.incarnations.set(node, (this.incarnations.get(node) ?? 0) + 1)
  }

  private schedule(source: number, destination: number, message: M): void {
    const incarnation = this.incarnations.get(destination) ?? 0
    const delay = this.random.int(this.faults.minDelayMs, this.faults.maxDelayMs)
    this.scheduler.after(delay, () => {
      if (this.isBlocked(source, destination) || (this.incarnations.get(destination) ?? 0) !== incarnation) {
        this.stats.lost++
        return
      }
      this.stats.delivered++
      return this.deliver(destination, message)
    })
  }
}

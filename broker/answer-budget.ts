/**
 * The node's pool for Fetch answers not yet handed to the kernel (`queued.max.response.bytes`, Brook's own setting:
 * Kafka sends log segments from the page cache with zero-copy and has no such pool; Brook's answers are in memory
 * until the socket takes them). One Fetch answer is bounded by fetch.max.bytes and a connection has at most one in
 * its socket (a Fetch mutes its connection), but without a pool many consumers that read slowly could together make
 * the node hold connections x fetch.max.bytes.
 *
 *   fetch pass:  granted = take(maxBytes)        room left, up to what was asked (0 when the pool is full)
 *                read up to `granted` bytes      but at least one batch (minOneMessage), so every fetch progresses
 *                settle(granted, read)           the pool holds what was read
 *   answered:    parked  -> give(read)           a long poll holds nothing while it waits
 *                returns -> give(read) once the answer has left the socket, or the connection closed without it
 *
 * The bytes held stay below queued.max.response.bytes + (fetches in progress x one batch): a pass that finds the
 * pool full still returns one batch.
 */
export class AnswerBudget {
  private held = 0

  /** `maxBytes`: `queued.max.response.bytes`. */
  constructor(readonly maxBytes: number) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.held
  }

  /** Takes up to `wanted` bytes of the room left; returns how many it took (0 when the pool is full). */
  take(wanted: number): number {
    const granted = Math.max(0, Math.min(wanted, this.maxBytes - this.held))
    this.held += granted
    return granted
  }

  /** Turns a `take` of `granted` bytes into a hold of `used` bytes (more when one batch was larger than the grant). */
  settle(granted: number, used: number): void {
    this.held += used - granted
  }

  /** Gives back `bytes` held. */
  give(bytes: number): void {
    this.held -= bytes
  }
}

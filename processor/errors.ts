/**
 * The processor's errors. Two kinds matter to a running pipeline:
 *
 * - `RecordError`: one input record cannot be processed (not JSON, a missing field, a value that is not a number,
 *   an event time that is not a timestamp, a user function that threw before state changed), or one output record
 *   cannot be written (a sink's serializer threw or returned something other than a Buffer, a string or null, or a
 *   keyBy's repartition encoding threw). The record goes to the
 *   dead-letter topic with `reason` in its `brook.error.reason` header, is counted, and processing goes on. Any other
 *   error while processing restarts the task from its last commit, and stops the pipeline at the third failure in a
 *   row at one offset (runtime/runner.ts).
 * - `TopologyError`: the pipeline itself is wrong (two operators with one name, a duration that is not one, a
 *   co-partitioning mismatch, a changelog topic with the wrong partition count, a state directory another running
 *   instance holds: STATE_DIR_LOCKED; another topology than the consumer group's leader runs: TOPOLOGY_MISMATCH).
 *   It is thrown before anything is consumed, with a message that names the operator, topic or directory.
 * - `StateEncodingError`: a task's state cannot be encoded for its commit (a state of updateStateByKey or reduce, or
 *   group fields, that msgpack cannot write: a cycle). The same state fails again at every retry from the task's
 *   last commit, so the runner counts it as a record that fails, and stops the pipeline at the third in a row.
 * - `GuaranteeError`: the pipeline cannot start with exactly_once: the cluster has no transactions and exactly_once
 *   was asked for (TRANSACTIONS_UNSUPPORTED), or whether it has them stayed unknown, the cluster not answering
 *   definitively within a minute or answering an error such as an authorization failure (TRANSACTIONS_UNKNOWN).
 */

import { inspect } from 'node:util'

/** Codes of the processor's errors, stable for scripts and tests. */
export const ProcessorErrorCode = {
  notJson: 'NOT_JSON',
  missingField: 'MISSING_FIELD',
  notNumeric: 'NOT_NUMERIC',
  badTimestamp: 'BAD_TIMESTAMP',
  badKey: 'BAD_KEY',
  userFunction: 'USER_FUNCTION_FAILED',
  serializationFailed: 'SERIALIZATION_FAILED',
  groupTooLarge: 'GROUP_TOO_LARGE',
  badTopology: 'BAD_TOPOLOGY',
  badState: 'BAD_STATE',
  stateDirLocked: 'STATE_DIR_LOCKED',
  topologyMismatch: 'TOPOLOGY_MISMATCH',
  transactionsUnsupported: 'TRANSACTIONS_UNSUPPORTED',
  transactionsUnknown: 'TRANSACTIONS_UNKNOWN',
} as const

export type ProcessorErrorCode = (typeof ProcessorErrorCode)[keyof typeof ProcessorErrorCode]

/** One record could not be processed; it goes to the dead-letter topic. */
export class RecordError extends Error {
  constructor(
    readonly code: ProcessorErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'RecordError'
  }
}

/** The topology, its options or the cluster's topics do not fit together; raised before processing starts. */
export class TopologyError extends Error {
  readonly code: ProcessorErrorCode
  constructor(message: string, code: ProcessorErrorCode = ProcessorErrorCode.badTopology) {
    super(message)
    this.name = 'TopologyError'
    this.code = code
  }
}

/** A state entry could not be encoded for a commit; the message names the operator and the group. */
export class StateEncodingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'StateEncodingError'
  }
}

/** exactly_once cannot be had: the cluster has no transactions, or whether it has them could not be found out. */
export class GuaranteeError extends Error {
  constructor(
    readonly code: typeof ProcessorErrorCode.transactionsUnsupported | typeof ProcessorErrorCode.transactionsUnknown,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'GuaranteeError'
  }
}

/**
 * A value as a dead letter (or a late record made from no input) holds it, and as a reason quotes it: JSON when it
 * has a JSON form, else Node's inspection of it (`{ n: 4, big: 10n }`, `<ref *1> { self: [Circular *1] }`). A value
 * JSON cannot write (a BigInt, a cycle) is often why its serializer failed, and `String` would make it `[object
 * Object]`; and a deserializer of one's own may read int64 fields as BigInts, whose JSON.stringify in a reason threw
 * instead of the RecordError, so that the record failed its task three times and stopped the pipeline rather than
 * being a dead letter.
 */
export function jsonOrText(value: unknown): string {
  try {
    const json = JSON.stringify(value)
    if (json !== undefined) return json
  } catch {
    // No JSON form: inspected below.
  }
  return inspect(value, { depth: 8, breakLength: Infinity, maxArrayLength: 1000, maxStringLength: 100_000 })
}

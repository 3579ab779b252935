/**
 * Argument parsers for the commands' options: each turns one command-line string into a typed value (the option's
 * type is inferred from it) or throws InvalidArgumentError with a one-line message naming the option.
 */
import { InvalidArgumentError } from '@commander-js/extra-typings'
import type { TopicSelection } from '../client/group-admin.js'
import type { StartPosition } from '../client/console-consumer.js'
import { ElectionType, GROUP_STATES, OffsetSpec } from '../protocol/constants.js'

/** A whole number within [min, max]. */
export function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`)
    const n = Number(value)
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`)
    return n
  }
}

/**
 * A replication factor for topics a command creates: -1 (the cluster's default.replication.factor) or 1 to 32767,
 * as CreateTopics takes it; 0 is refused here rather than by the cluster.
 */
export function replicationFactor(value: string): number {
  const n = integer('--replication-factor', -1, 32_767)(value)
  if (n === 0) throw new InvalidArgumentError("--replication-factor must be -1 (the cluster's default) or between 1 and 32767")
  return n
}

/** `key=value` for repeatable options; the value may be empty, the key may not. */
export function keyValue(name: string) {
  return (value: string, previous: [string, string][] = []): [string, string][] => {
    const at = value.indexOf('=')
    if (at <= 0) throw new InvalidArgumentError(`${name} takes key=value, not '${value}'`)
    return [...previous, [value.slice(0, at), value.slice(at + 1)]]
  }
}

/**
 * `--replica-assignment` as kafka-topics.sh writes it: partitions separated by commas, each partition's broker ids by
 * colons, the first its preferred leader (`1:2,2:3,3:1`: three partitions of two replicas). Returns the broker ids by
 * partition.
 */
export function replicaAssignment(value: string): number[][] {
  const partitions = value.split(',').map((partition) => partition.split(':').map((id) => id.trim()))
  for (const [i, ids] of partitions.entries()) {
    if (ids.some((id) => !/^\d+$/.test(id) || Number(id) > 2147483647)) {
      throw new InvalidArgumentError(`--replica-assignment: partition ${i} must be broker ids separated by ':' (partitions by ','), not '${ids.join(':')}'`)
    }
  }
  return partitions.map((ids) => ids.map(Number))
}

/** A whole number within [min, max] for a repeatable option: the values in order. */
export function integers(name: string, min: number, max: number) {
  const one = integer(name, min, max)
  return (value: string, previous: number[] = []): number[] => [...previous, one(value)]
}

/** `--type` of `topics elect-leaders`: preferred or unclean in any case, as kafka-leader-election.sh --election-type. */
export function electionType(value: string): ElectionType {
  const type = value.toLowerCase()
  if (type === 'preferred') return ElectionType.PREFERRED
  if (type === 'unclean') return ElectionType.UNCLEAN
  throw new InvalidArgumentError(`--type takes preferred or unclean, not '${value}'`)
}

/** A repeatable option's values, in order. */
export function repeated(value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

/** `--offset`: a non-negative offset, earliest or latest. */
export function startOffset(value: string): StartPosition {
  if (value === 'earliest' || value === 'latest') return { from: value }
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('--offset takes a non-negative offset, earliest or latest')
  return { from: 'offset', offset: BigInt(value) }
}

/** Milliseconds since the epoch, or an ISO 8601 date (`2024-05-01T12:00:00Z`; without a zone, local time). */
export function timestamp(name: string) {
  return (value: string): bigint => {
    if (/^\d+$/.test(value)) {
      if (BigInt(value) > 2n ** 63n - 1n) throw new InvalidArgumentError(`${name} must fit in a 64-bit integer`)
      return BigInt(value)
    }
    const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN
    if (Number.isNaN(ms)) throw new InvalidArgumentError(`${name} takes milliseconds since the epoch or an ISO 8601 date`)
    return BigInt(ms)
  }
}

/** An int64 offset or delta (`--to-offset`, `--shift-by`). */
export function offset(name: string, options: { signed: boolean }) {
  return (value: string): bigint => {
    if (!(options.signed ? /^[-+]?\d+$/ : /^\d+$/).test(value)) {
      throw new InvalidArgumentError(`${name} takes ${options.signed ? 'a whole number (negative to move back)' : 'a non-negative offset'}`)
    }
    const n = BigInt(value)
    if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw new InvalidArgumentError(`${name} must fit in a 64-bit integer`)
    return n
  }
}

/** `--topic orders` or `--topic orders:0,2` (repeatable), as kafka-consumer-groups.sh takes it. */
export function topicPartitions(value: string, previous: TopicSelection[] = []): TopicSelection[] {
  const match = /^([^:]+)(?::(\d+(?:,\d+)*))?$/.exec(value)
  if (!match) throw new InvalidArgumentError(`--topic takes topic or topic:partition,partition..., not '${value}'`)
  return [...previous, { topic: match[1]!, partitions: match[2]?.split(',').map(Number) }]
}

/** Group states for `groups list --state`, comma-separated or repeated, in any case. */
export function groupStates(value: string, previous: string[] = []): string[] {
  const states = value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  return [
    ...previous,
    ...states.map((state) => {
      const known = GROUP_STATES.find((s) => s.toLowerCase() === state.toLowerCase())
      if (!known) throw new InvalidArgumentError(`--state takes ${GROUP_STATES.join(', ')}, not '${state}'`)
      return known
    }),
  ]
}

/** GetOffsetShell's `--time` words and numbers: the OffsetSpec each stands for. */
const OFFSET_TIMES: Readonly<Record<string, bigint>> = {
  latest: OffsetSpec.LATEST,
  earliest: OffsetSpec.EARLIEST,
  'max-timestamp': OffsetSpec.MAX_TIMESTAMP,
  'earliest-local': OffsetSpec.EARLIEST_LOCAL,
  'latest-tiered': OffsetSpec.LATEST_TIERED,
}

/**
 * `--time` as kafka-get-offsets.sh takes it: latest (-1), earliest (-2), max-timestamp (-3), earliest-local (-4),
 * latest-tiered (-5), or a time: milliseconds since the epoch or an ISO 8601 date. Returns the ListOffsets timestamp.
 */
export function offsetTime(value: string): bigint {
  const named = OFFSET_TIMES[value]
  if (named !== undefined) return named
  if (/^-[1-5]$/.test(value)) return BigInt(value)
  if (/^\d+$/.test(value)) return timestamp('--time')(value)
  try {
    return timestamp('--time')(value)
  } catch {
    throw new InvalidArgumentError(`--time takes ${Object.entries(OFFSET_TIMES).map(([word, n]) => `${n} or ${word}`).join(', ')}, or milliseconds since the epoch or an ISO 8601 date, not '${value}'`)
  }
}

/** `--partitions 0,2,5`: partition ids, comma-separated. */
export function partitionIds(value: string): number[] {
  if (!/^\d+(,\d+)*$/.test(value) || value.split(',').some((id) => Number(id) > 2_147_483_647)) {
    throw new InvalidArgumentError(`--partitions takes partition ids separated by commas, not '${value}'`)
  }
  return [...new Set(value.split(',').map(Number))]
}

/** `--before`: a non-negative offset, or high-watermark (-1 also) for everything below the high watermark. */
export function deleteBefore(value: string): bigint {
  if (value === 'high-watermark' || value === '-1') return -1n
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`--before takes a non-negative offset, or high-watermark (or -1), not '${value}'`)
  return offset('--before', { signed: false })(value)
}

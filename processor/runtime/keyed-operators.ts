/**
 * The keyed operators that have no window: a running aggregate or reduce per group (Spark's reduceByKey), which
 * emits the results of the groups that changed at each commit, and updateStateByKey, which keeps one state per
 * record key and emits every new state at once.
 */
import type { Accumulation } from '../aggregate/aggregations.js'
import type { EntryCodec } from '../state/codec.js'
import type { KeyedState } from '../state/task-store.js'

/** A running aggregate's entry: record key, group fields, accumulator. */
export interface KeyedEntry {
  k: string | null
  f: Record<string, unknown>
  a: unknown
}

export interface KeyedResult {
  key: string | null
  group: string
  fields: Record<string, unknown>
  values: Record<string, unknown>
}

/** A running aggregate's entry in binary: `string k` `plain f` accumulator. */
export function keyedEntryCodec(accumulation: Accumulation): EntryCodec<KeyedEntry> {
  return {
    write: (out, entry) => {
      out.string(entry.k)
      out.frozenPlain(entry.f)
      accumulation.write(out, entry.a)
    },
    read: (from) => {
      const k = from.string()
      const f = from.plain() as Record<string, unknown>
      return { k, f, a: accumulation.read(from) }
    },
    ...(accumulation.oldestFormat === undefined ? {} : { oldestFormat: accumulation.oldestFormat }),
  }
}

export class KeyedAggregate {
  private readonly changed = new Set<string>()

  constructor(
    private readonly accumulation: Accumulation,
    private readonly state: KeyedState<KeyedEntry>,
  ) {}

  /** Folds one record in; returns a promise only when the group's entry had to be read from disk. */
  process(key: string | null, group: string, fields: Record<string, unknown>, inputs: unknown, ts: number): void | Promise<void> {
    const apply = (found: KeyedEntry | undefined): void => {
      const entry = found ?? { k: key, f: fields, a: this.accumulation.create() }
      entry.a = this.accumulation.add(entry.a, inputs, ts)
      this.state.put(group, entry)
      this.changed.add(group)
    }
    const entry = this.state.get(group)
    return entry instanceof Promise ? entry.then(apply) : apply(entry)
  }

  /** The results of the groups changed since the last call. */
  async changedResults(): Promise<KeyedResult[]> {
    const results: KeyedResult[] = []
    for (const group of this.changed) {
      const entry = await this.state.get(group)
      if (entry) results.push({ key: entry.k, group, fields: entry.f, values: this.accumulation.result(entry.a) })
    }
    this.changed.clear()
    return results
  }

  reset(): void {
    this.changed.clear()
  }
}

/** `items` grouped by `key`, in the order each key first appears, each group in the order of `items`. */
export function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>()
  for (const item of items) {
    const k = key(item)
    const group = groups.get(k)
    if (group) group.push(item)
    else groups.set(k, [item])
  }
  return groups
}

/**
 * The keys that `keys` holds more than once: what a request names twice, which Kafka refuses at each mention
 * (INVALID_REQUEST) and acts on at none (ListOffsets, AlterConfigs).
 */
export function repeated<K>(keys: Iterable<K>): Set<K> {
  const seen = new Set<K>()
  const twice = new Set<K>()
  for (const key of keys) (seen.has(key) ? twice : seen).add(key)
  return twice
}

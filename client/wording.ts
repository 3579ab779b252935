/**
 * Counts in words for messages and CLI output: "1 partition", "3 partitions", never "1 partitions" or "partition(s)".
 */

/** `count` followed by the singular or plural noun; the plural is the singular plus "s" unless given. */
export function counted(count: number | bigint, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 || count === 1n ? singular : plural}`
}

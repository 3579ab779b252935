/**
 * The independent witness of what the CLI commits: a group's committed offsets as kafkajs's admin reads them
 * (OffsetFetch from another client), one string per partition in partition order, '-1' where there is none.
 */
import type { Admin } from 'kafkajs'

export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<string[]> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
  return offsets!.partitions.sort((a, b) => a.partition - b.partition).map((p) => p.offset)
}

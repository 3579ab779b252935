/**
 * A damaged LevelDB block, as a bad disk leaves one: 64 bytes of 0xff in the middle of the largest table of a node's
 * (or a LogStore's) database, so the block there no longer passes its checksum and a read that reaches it gets
 * LevelDB's `Corruption` error. The database must be closed; the batches around the middle of the largest table are
 * the ones lost.
 */
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'

export function damageLargestTable(dataDir: string): void {
  const db = join(dataDir, 'db')
  const [table] = readdirSync(db)
    .filter((name) => name.endsWith('.ldb'))
    .map((name) => ({ path: join(db, name), size: statSync(join(db, name)).size }))
    .sort((a, b) => b.size - a.size)
  if (!table) throw new Error(`no LevelDB table in ${db} to damage`)
  const fd = openSync(table.path, 'r+')
  writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, Math.floor(table.size / 2))
  closeSync(fd)
}

/**
 * Damaged LevelDB blocks, as a bad disk leaves them, in a node's (or a LogStore's) database, which must be closed: a
 * block that no longer passes its checksum gives a read that reaches it LevelDB's `Corruption` error.
 */
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'

/** The database's table files, largest first. */
function tables(dataDir: string): { path: string; size: number }[] {
  const db = join(dataDir, 'db')
  const found = readdirSync(db)
    .filter((name) => name.endsWith('.ldb'))
    .map((name) => ({ path: join(db, name), size: statSync(join(db, name)).size }))
    .sort((a, b) => b.size - a.size)
  if (found.length === 0) throw new Error(`no LevelDB table in ${db} to damage`)
  return found
}

/** Writes `length` bytes of 0xff at each of `positions` of the file at `path`. */
function overwrite(path: string, positions: readonly number[], length: number): void {
  const fd = openSync(path, 'r+')
  try {
    for (const at of positions) writeSync(fd, Buffer.alloc(length, 0xff), 0, length, at)
  } finally {
    closeSync(fd)
  }
}

/** 64 bytes in the middle of the largest table: the batches around its middle are the ones lost. */
export function damageLargestTable(dataDir: string): void {
  const [table] = tables(dataDir)
  overwrite(table!.path, [Math.floor(table!.size / 2)], 64)
}

/**
 * Every data block of every table (16 bytes every 1000, the last 3000 bytes, where the index and footer are, left
 * whole so that LevelDB still opens the table): any read of stored data, a start's included, meets a damaged block.
 */
export function damageEveryTable(dataDir: string): void {
  for (const table of tables(dataDir)) {
    const positions: number[] = []
    for (let at = 100; at < table.size - 3000; at += 1000) positions.push(at)
    overwrite(table.path, positions, 16)
  }
}

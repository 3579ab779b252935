/**
 * Which process holds a data directory's LevelDB lock, for the message that refuses the directory. LevelDB locks its
 * `LOCK` file with fcntl (a POSIX record lock, leveldb's util/env_posix.cc LockFile), which Linux lists in /proc/locks
 * with the holder's pid and the file's device and inode:
 *
 *   1: POSIX  ADVISORY  WRITE 23871 fe:00:2156243 0 EOF
 *                             pid   major:minor:inode
 *
 * Where there is no /proc (macOS), the holder is unknown and `lsof <dir>/db/LOCK` is the way to find it.
 */
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface LockHolder {
  pid: number
  /** Its command line, arguments separated by spaces. */
  args: string[]
}

/** The process holding `lockFile`'s POSIX lock, or null when none is listed or /proc/locks cannot be read. */
export function lockHolder(lockFile: string): LockHolder | null {
  let locks: string
  let device: { major: number; minor: number; inode: number }
  try {
    locks = readFileSync('/proc/locks', 'utf8')
    const { dev, ino } = statSync(lockFile)
    // glibc's encoding of st_dev (gnu_dev_major, gnu_dev_minor) for the devices below 2^32 that Node's number holds.
    device = { major: (dev >>> 8) & 0xfff, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00), inode: ino }
  } catch {
    return null
  }
  for (const line of locks.split('\n')) {
    // A `->` line is a process waiting for the lock, not holding it.
    if (line.includes('->')) continue
    const fields = line.trim().split(/\s+/)
    const at = fields.findIndex((field) => /^[0-9a-f]+:[0-9a-f]+:\d+$/.test(field))
    if (at < 1) continue
    const [major, minor, inode] = fields[at]!.split(':')
    if (parseInt(major!, 16) !== device.major || parseInt(minor!, 16) !== device.minor || Number(inode) !== device.inode) continue
    const pid = Number(fields[at - 1])
    // Empty when the process is gone since /proc/locks was read, or not ours to look at: the pid alone still says who.
    return { pid, args: processArgs(pid) }
  }
  return null
}

/** Process `pid`'s command line (/proc/<pid>/cmdline), or none when it cannot be read. */
export function processArgs(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '')
  } catch {
    return []
  }
}

/** Whether a command line runs `brook <command>` (the brook program or dist/cli/brook.js, then the command). */
export function runsBrook(args: readonly string[], command: string): boolean {
  return args.some((arg, i) => arg === command && /brook(\.js)?$/.test(args[i - 1] ?? ''))
}

/**
 * The holder in words: a node (`brook start`) by its node id and pid, with how to stop it; another program by its pid
 * and command.
 */
export function holderText(holder: LockHolder): string {
  const nodeId = brookNodeId(holder)
  if (nodeId === null) return `pid ${holder.pid}${holder.args.length > 0 ? ` (${holder.args.join(' ').slice(0, 120)})` : ''}`
  return `node ${nodeId} (brook start), pid ${holder.pid}; \`kill ${holder.pid}\` stops it cleanly`
}

/** The node id of a holder that is a Brook node (`brook start`, node 1 without `--node-id`); null for any other program. */
export function brookNodeId(holder: LockHolder): string | null {
  if (!runsBrook(holder.args, 'start')) return null
  const idAt = holder.args.indexOf('--node-id')
  return idAt >= 0 ? (holder.args[idAt + 1] ?? '1') : '1'
}

/** Where a node's LevelDB database lives in its data directory. */
export function databaseDir(dataDir: string): string {
  return join(dataDir, 'db')
}

/** LevelDB's lock file in a data directory, which names the process holding the directory. */
export function lockFileOf(dataDir: string): string {
  return join(databaseDir(dataDir), 'LOCK')
}

/**
 * Who holds a data directory: a running node by its node id and pid, with how to stop it, or another program by its
 * pid and command; null when no process is listed as holding it (or /proc/locks cannot be read).
 */
export function dataDirectoryHolder(dataDir: string): string | null {
  const holder = dataDirectoryLockHolder(dataDir)
  return holder === null ? null : holderText(holder)
}

/** The process holding a data directory's lock, or null when none is listed. */
export function dataDirectoryLockHolder(dataDir: string): LockHolder | null {
  return lockHolder(lockFileOf(dataDir))
}

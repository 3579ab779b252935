/**
 * An instance's hold on its state directory, as Kafka Streams' StateDirectory locks `state.dir`: one running
 * instance per directory, so two instances never open, write or delete each other's task stores.
 *
 *   <stateDir>/.lock/    a LevelDB database kept open while the instance runs: LevelDB takes an OS file lock on its
 *                        LOCK file, which the OS releases when the process ends, even by kill -9, so no lock
 *                        outlives its instance and none has to be cleaned up by hand
 *   <stateDir>/.owner    `pid <pid> instance <instanceId> since <ISO time>`, written once the lock is held, for the
 *                        message a second instance gets
 */
import { Level } from 'level'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ProcessorErrorCode, TopologyError } from '../errors.js'

/**
 * Creates `stateDir` and its missing parents one at a time and returns the first one it created (undefined when
 * `stateDir` existed), as `mkdirSync(dir, { recursive: true })` does, which in Node 20 spins for ever under a parent
 * that exists but takes no directories (`/proc/x`). Errors: a plain Error naming the state directory when a file
 * stands where a directory should be or a mkdir fails (its reason, such as EACCES or ENOENT, in the message).
 */
function makeStateDirectory(stateDir: string): string | undefined {
  const missing: string[] = []
  let path = resolve(stateDir)
  for (; !existsSync(path) && dirname(path) !== path; path = dirname(path)) missing.unshift(path)
  if (!statSync(path).isDirectory()) throw new Error(`cannot use the state directory ${stateDir}: ${path} is a file, not a directory`)
  try {
    for (const created of missing) mkdirSync(created)
  } catch (error) {
    throw new Error(`cannot make the state directory ${stateDir}: ${(error as Error).message}`)
  }
  return missing[0]
}

/** The lock, held until `release()`. */
export interface StateDirectoryLock {
  release(): Promise<void>
  /**
   * After `release()`: removes the directories taking the lock made (the state directory and any missing parents)
   * when the state directory holds nothing but the lock, so that an instance that failed to start leaves nothing
   * behind; a directory that was there before, or that holds task stores, stays.
   */
  removeIfUnused(): void
}

/**
 * The instances of this process that hold or are taking each state directory (by its absolute path), one entry per
 * `lockStateDirectory` call: a second instance of the process is refused before the holder has written `.owner`
 * when both start at once, and `.owner` may then still name an instance of an earlier run.
 */
const takenHere = new Map<string, Map<symbol, string>>()

/**
 * Takes `stateDir` (made if missing) for the instance `instanceId`. Errors: a TopologyError with code
 * STATE_DIR_LOCKED when another instance holds it, naming it: in this process by its instance id, in another by the
 * pid and instance id its `.owner` file gives; a plain Error when the directory cannot be made or the lock database
 * cannot be opened for another reason.
 */
export async function lockStateDirectory(stateDir: string, instanceId: string): Promise<StateDirectoryLock> {
  const made = makeStateDirectory(stateDir)
  const path = resolve(stateDir)
  const call = Symbol(instanceId)
  const here = takenHere.get(path) ?? new Map<symbol, string>()
  takenHere.set(path, here.set(call, instanceId))
  const untake = (): void => {
    here.delete(call)
    if (here.size === 0 && takenHere.get(path) === here) takenHere.delete(path)
  }
  const removeIfUnused = (): void => {
    if (made === undefined) return
    try {
      if (readdirSync(stateDir).every((name) => name === '.lock' || name === '.owner')) rmSync(made, { recursive: true, force: true })
    } catch {
      // Left behind: an empty directory is no harm.
    }
  }
  const db = new Level(join(stateDir, '.lock'))
  try {
    await db.open()
  } catch (error) {
    untake()
    const cause = (error as Error & { cause?: Error & { code?: string } }).cause
    if (cause?.code !== 'LEVEL_LOCKED') {
      removeIfUnused()
      throw new Error(`cannot lock the state directory ${stateDir}: ${cause?.message ?? (error as Error).message}`)
    }
    const others = [...here.values()]
    const holder = others.length > 0 ? ` in this process (pid ${process.pid}, instance ${others.join(', ')})` : ownerOf(stateDir)
    throw new TopologyError(
      `the state directory ${stateDir} is in use by another instance${holder}: give each instance on a machine its own state directory (--state-dir, stateDir)`,
      ProcessorErrorCode.stateDirLocked,
    )
  }
  writeFileSync(join(stateDir, '.owner'), `pid ${process.pid} instance ${instanceId} since ${new Date().toISOString()}\n`)
  return {
    release: async () => {
      await db.close()
      untake()
    },
    removeIfUnused,
  }
}

/** ` (pid N, instance id)` from the holder's `.owner` file, or '' when it cannot be read. */
function ownerOf(stateDir: string): string {
  try {
    const match = /^pid (\d+) instance (\S+)/.exec(readFileSync(join(stateDir, '.owner'), 'utf8'))
    return match ? ` (pid ${match[1]}, instance ${match[2]})` : ''
  } catch {
    return ''
  }
}

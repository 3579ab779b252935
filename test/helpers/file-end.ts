/**
 * Cleanup that must happen when a test file ends, whatever its tests did: child processes a failed test left running
 * and temporary directories. Vitest ends its worker processes without an 'exit' event, so `process.on('exit')` never
 * runs there. Without isolation (vitest `isolate: false`) a worker runs many files one after another and evaluates
 * each helper once, for the first file that imports it, so a hook registered at import would belong to that file
 * alone. The sets and lists made here are the worker's instead, and ./file-end-setup.ts (a `setupFiles` entry, run
 * before every file) registers for every file the `afterAll` that runs `endFile`. Registered before the file's own
 * hooks, it runs after them.
 */
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

const children: Set<ChildProcess>[] = []
const directories: string[][] = []

/** A set of child processes; those still in it when the test file ends are killed with SIGKILL. */
export function killedAtFileEnd(): Set<ChildProcess> {
  const running = new Set<ChildProcess>()
  children.push(running)
  return running
}

/** A list of directories, each removed (recursively) when the test file ends. */
export function removedAtFileEnd(): string[] {
  const dirs: string[] = []
  directories.push(dirs)
  return dirs
}

/**
 * Kills (SIGKILL) the child processes still in every set of `killedAtFileEnd` and removes the directories of every
 * list of `removedAtFileEnd`, then empties them for the worker's next file. Run by ./file-end-setup.ts as each test
 * file ends.
 */
export function endFile(): void {
  for (const running of children) {
    for (const child of running) child.kill('SIGKILL')
    running.clear()
  }
  for (const dirs of directories) {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  }
}

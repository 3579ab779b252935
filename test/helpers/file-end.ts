/**
 * Cleanup that must happen when a test file ends, whatever its tests did: child processes a failed test left running
 * and temporary directories. Vitest ends its worker processes without an 'exit' event, so `process.on('exit')` never
 * runs there; these register an `afterAll` of the importing test file instead (helpers are evaluated once per file).
 * Registered at import, before the file's own hooks, they run after them.
 */
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { afterAll } from 'vitest'

/** A set of child processes; those still in it when the test file ends are killed with SIGKILL. */
export function killedAtFileEnd(): Set<ChildProcess> {
  const running = new Set<ChildProcess>()
  afterAll(() => {
    for (const child of running) child.kill('SIGKILL')
  })
  return running
}

/** A list of directories, each removed (recursively) when the test file ends. */
export function removedAtFileEnd(): string[] {
  const dirs: string[] = []
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  return dirs
}

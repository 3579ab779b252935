/** The processes under a process, from /proc (Linux): a test's children and theirs, to find or to kill. */
import { readdirSync, readFileSync } from 'node:fs'

/** The fields of /proc/<pid>/stat after the command name (state first, then the parent pid), or null when it is gone. */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (second field) is in parentheses and may hold spaces: the fields after it are plain.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

/** Whether process `pid` still runs: it exists and is not a zombie (ended, its exit status not yet collected). */
export function alive(pid: number): boolean {
  const fields = statFields(pid)
  return fields !== null && fields[0] !== 'Z'
}

/** The processes of `pids` still running, a line each with its command line: what a wait for them to end names. */
export function runningOf(pids: readonly number[]): string {
  return pids
    .filter(alive)
    .map((pid) => {
      try {
        return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')}`
      } catch {
        return `${pid}: gone meanwhile`
      }
    })
    .join('\n')
}

/** Every live process under `root`, each before its own children (the parent pid is the fourth field of /proc/<pid>/stat). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    // Null: the process ended while the list was read.
    const fields = statFields(entry)
    if (fields === null) continue
    const parent = Number(fields[1])
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)])
  }
  const found: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

/**
 * Network faults between cluster nodes on loopback, with iptables: each node listens on, and connects from, its own
 * address of 127/8 (bench/cluster-process.ts `hosts`), and a fault is a DROP rule in INPUT for each (source,
 * destination) pair it names. Dropping on receipt, not in OUTPUT, is what a partition looks like to the sender: its
 * packets vanish and its connections time out (a DROP in OUTPUT fails the sender's own connect() at once with EPERM).
 * Every rule carries a comment, its owner's tag (`brook-test` for the tests, `brook-nemesis` for bench/nemesis.ts), so
 * that `removeTaggedRules(tag)` clears what a killed run left behind and never touches anyone else's rules.
 */
import { execFileSync } from 'node:child_process'

function iptables(args: readonly string[]): string {
  // -w 10: wait up to 10 s for the xtables lock rather than fail while another iptables command runs; the timeout
  // fails a command that hangs (a lock never released, a stuck netfilter call) instead of blocking the caller.
  return execFileSync('iptables', ['-w', '10', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
}

/** Why iptables cannot drop packets on this machine (not root, no binary, a rule refused), or null when it can. */
export function iptablesUnusable(tag: string): string | null {
  if (process.getuid?.() !== 0) return 'iptables needs root'
  const probe = ['INPUT', '-s', '127.0.0.11', '-d', '127.0.0.11', '-m', 'comment', '--comment', tag, '-j', 'ACCEPT']
  try {
    iptables(['-A', ...probe])
    iptables(['-D', ...probe])
    return null
  } catch (error) {
    const failure = error as { code?: string; stderr?: string; message: string }
    if (failure.code === 'ENOENT') return 'iptables is not installed'
    return `iptables refused a rule: ${(failure.stderr || failure.message).trim().split('\n')[0]}`
  }
}

/** Deletes every INPUT rule tagged `tag` (leftovers of a run that was killed before it healed). */
export function removeTaggedRules(tag: string): void {
  for (const line of iptables(['-S', 'INPUT']).split('\n')) {
    if (!line.startsWith('-A INPUT ') || !line.includes(`--comment ${tag}`)) continue
    iptables(['-D', ...line.split(' ').slice(1)])
  }
}

export interface Cut {
  /** Deletes exactly the rules this cut added (again: nothing). */
  heal(): void
}

/** Drops every packet from the first address of a pair to the second, with rules tagged `tag`, until healed. */
export function dropPackets(pairs: readonly (readonly [source: string, destination: string])[], tag: string): Cut {
  const rules: string[][] = []
  const heal = (): void => {
    // Every rule is tried, so one that fails to go does not keep the others in place.
    const failures: unknown[] = []
    for (const rule of rules.splice(0)) {
      try {
        iptables(['-D', ...rule])
      } catch (error) {
        failures.push(error)
      }
    }
    if (failures.length > 0) throw failures[0]
  }
  try {
    for (const [source, destination] of pairs) {
      const rule = ['INPUT', '-s', source, '-d', destination, '-m', 'comment', '--comment', tag, '-j', 'DROP']
      iptables(['-A', ...rule])
      rules.push(rule)
    }
  } catch (error) {
    heal()
    throw error
  }
  return { heal }
}

/** Cuts every link between an address of `side` and one of `rest`, both ways, with rules tagged `tag`. */
export function cutLinks(side: readonly string[], rest: readonly string[], tag: string): Cut {
  return dropPackets(side.flatMap((a) => rest.flatMap((b) => [[a, b], [b, a]] as const)), tag)
}

/**
 * Network partitions between cluster nodes on loopback, with iptables: each node listens on, and connects from, its
 * own address of 127/8 (test/helpers/cluster.ts `hosts`), and a cut is a DROP rule in INPUT for every ordered pair
 * of addresses on either side. Dropping on receipt, not in OUTPUT, is what a partition looks like to the sender: its
 * packets vanish and its connections time out (a DROP in OUTPUT fails the sender's own connect() at once with EPERM).
 * The rules name the nodes' addresses only, so a test client, which connects from 127.0.0.1, still reaches every node.
 * Every rule carries the comment `brook-test`; `removeTaggedRules()` clears any a killed test run left behind.
 */
import { execFileSync } from 'node:child_process'

const TAG = 'brook-test'

function iptables(args: readonly string[]): string {
  // -w 10: wait up to 10 s for the xtables lock rather than fail while another iptables command runs; the timeout
  // fails a command that hangs (a lock never released, a stuck netfilter call) instead of blocking the test worker.
  return execFileSync('iptables', ['-w', '10', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
}

/** Why iptables cannot cut links on this machine (not root, no binary, a rule refused), or null when it can. */
export function iptablesUnusable(): string | null {
  if (process.getuid?.() !== 0) return 'iptables needs root, and the tests do not run as root'
  const probe = ['INPUT', '-s', '127.0.0.11', '-d', '127.0.0.11', '-m', 'comment', '--comment', TAG, '-j', 'ACCEPT']
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

/** Deletes every INPUT rule tagged `brook-test` (leftovers of a run that was killed before it healed). */
export function removeTaggedRules(): void {
  for (const line of iptables(['-S', 'INPUT']).split('\n')) {
    if (!line.startsWith('-A INPUT ') || !line.includes(`--comment ${TAG}`)) continue
    iptables(['-D', ...line.split(' ').slice(1)])
  }
}

export interface Cut {
  /** Deletes exactly the rules this cut added (again: nothing). */
  heal(): void
}

/** Cuts every link between an address of `side` and one of `rest`, both ways. */
export function cutLinks(side: readonly string[], rest: readonly string[]): Cut {
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
    for (const a of side) {
      for (const b of rest) {
        for (const [source, destination] of [[a, b], [b, a]] as const) {
          const rule = ['INPUT', '-s', source!, '-d', destination!, '-m', 'comment', '--comment', TAG, '-j', 'DROP']
          iptables(['-A', ...rule])
          rules.push(rule)
        }
      }
    }
  } catch (error) {
    heal()
    throw error
  }
  return { heal }
}

/**
 * The tests' network partitions: bench/iptables.ts with every rule tagged `brook-test`. The nodes' addresses are
 * their own (test/helpers/cluster.ts `hosts`), so a test client, which connects from 127.0.0.1, still reaches every
 * node across a cut between nodes.
 */
import * as rules from '../../bench/iptables.js'

export type { Cut } from '../../bench/iptables.js'

const TAG = 'brook-test'

/** Why iptables cannot cut links on this machine (not root, no binary, a rule refused), or null when it can. */
export const iptablesUnusable = (): string | null => rules.iptablesUnusable(TAG)

/** Deletes every INPUT rule tagged `brook-test` (leftovers of a run that was killed before it healed). */
export const removeTaggedRules = (): void => rules.removeTaggedRules(TAG)

/** Cuts every link between an address of `side` and one of `rest`, both ways. */
export const cutLinks = (side: readonly string[], rest: readonly string[]): rules.Cut => rules.cutLinks(side, rest, TAG)

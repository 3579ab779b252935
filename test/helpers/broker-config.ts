/**
 * Broker settings that have no flag (group timeouts, retention intervals, offsets retention) reach a broker process
 * the way a user sets them: `brook start --config <json file>`. The file outlives restarts of the broker (which reuse
 * the same arguments) and is removed when the test file ends.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BrokerConfig } from '../../broker/config.js'
import { startBroker, type BrokerProcess, type StartOptions } from './broker.js'
import { removedAtFileEnd } from './file-end.js'

const dirs = removedAtFileEnd()

/** Settings for quick group tests: Kafka's defaults would make each test wait seconds for nothing. */
export const FAST_GROUPS: Partial<BrokerConfig> = {
  groupInitialRebalanceDelayMs: 300,
  groupMinSessionTimeoutMs: 1000,
}

/** `['--config', file]` for startBroker's args. */
export function configArgs(config: Partial<BrokerConfig>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'brook-config-'))
  dirs.push(dir)
  const file = join(dir, 'broker.json')
  writeFileSync(file, JSON.stringify(config))
  return ['--config', file]
}

/** A broker process started with `config` in a --config file (plus any other start options). */
export function startConfiguredBroker(config: Partial<BrokerConfig>, options: StartOptions = {}): Promise<BrokerProcess> {
  // The file's logRetentionMs, if any, goes to the flag too, which would otherwise set the tests' default over it.
  return startBroker({ ...options, logRetentionMs: options.logRetentionMs ?? config.logRetentionMs, args: [...configArgs(config), ...(options.args ?? [])] })
}

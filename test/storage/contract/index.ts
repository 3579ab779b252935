/**
 * The partition-log contract: every scenario a storage backend must pass, run with one call per backend.
 *
 *   import { partitionLogContract } from './contract/index.js'
 *   partitionLogContract('LevelDB LogStore', openLevelBackend)
 */
import { describe } from 'vitest'
import { appendScenarios } from './append.js'
import { backendsOf, type BackendFactory } from './backend.js'
import { lookupScenarios } from './lookup.js'
import { lookupPropertyScenarios } from './lookup-property.js'
import { readScenarios } from './read.js'
import { readPropertyScenarios } from './read-property.js'
import { restartScenarios } from './restart.js'
import { truncationScenarios } from './truncation.js'

export type { BackendFactory, BackendOptions, LogBackend } from './backend.js'

export function partitionLogContract(name: string, factory: BackendFactory): void {
  describe(`partition log contract: ${name}`, () => {
    const open = backendsOf(factory)
    appendScenarios(open)
    readScenarios(open)
    readPropertyScenarios(open)
    truncationScenarios(open)
    lookupScenarios(open)
    lookupPropertyScenarios(open)
    restartScenarios(open)
  })
}

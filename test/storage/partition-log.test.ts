/** The partition-log contract, run against the LevelDB LogStore (real LevelDB in a temporary directory). */
import { partitionLogContract } from './contract/index.js'
import { openLevelBackend } from './level-backend.js'

partitionLogContract('LevelDB LogStore', openLevelBackend)

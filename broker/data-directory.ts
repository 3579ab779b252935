/**
 * What a node's data directory says without the node running, for `brook dev`: who holds it, and the cluster id it
 * keeps. Light on purpose: `brook dev` (and `brook demo`) ask this before they start nodes, and loading the node's
 * modules (broker.ts, LevelDB, the codec) cost each of those processes about 0.25 s of CPU, so the database is loaded
 * only when a cluster id has to be read from it.
 */
import { existsSync } from 'node:fs'
import { databaseDir } from '../storage/lock-holder.js'

export { brookNodeId, dataDirectoryHolder, dataDirectoryLockHolder, holderText, processArgs, runsBrook, type LockHolder } from '../storage/lock-holder.js'

/** What a data directory records of the node it was made for (Kafka's meta.properties), kept in its database. */
export interface Identity {
  clusterId: string
  nodeId: number
  /**
   * The ids of the controller quorum's voters the directory was made for, sorted; null for a single node. Absent in
   * directories made before it was kept: the first start records it.
   */
  voters?: number[] | null
}

/**
 * The cluster id a node's data directory keeps (with its node id, in its database), or undefined when it has no
 * database or none is kept there. Opens the database and closes it again, so the node must not be running. Errors:
 * the database cannot be opened (a running node holds it).
 */
export async function storedClusterId(dataDir: string): Promise<string | undefined> {
  if (!existsSync(databaseDir(dataDir))) return undefined
  const { LogStore } = await import('../storage/log-store.js')
  const store = await LogStore.open(dataDir)
  try {
    return (await store.getNodeValue<Identity>('identity'))?.clusterId
  } finally {
    await store.close()
  }
}

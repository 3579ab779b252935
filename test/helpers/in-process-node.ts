/**
 * A node's services in this process, over a real LevelDB database in a temporary directory, without a listener: the
 * handlers are called directly with a decoded request, as the dispatcher calls them, and answer with the response
 * object a connection would encode. Nothing is mocked: `Broker.open` builds the same services a running node hands
 * its handlers.
 *
 *   const node = await openNode()                                   // afterEach: node.close()
 *   await node.createTopic('events', { partitions: 2 })
 *   const answer = await node.call(produceHandler, request, { apiVersion: 9 })
 *   const again = await node.reopen()                               // the same data directory, opened anew
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Broker } from '../../broker/broker.js'
import type { BrokerConfig } from '../../broker/config.js'
import { TEST_LOG_RETENTION_MS } from './broker.js'
import type { BrokerServices, HandlerEntry, HandlerResult, RequestContext } from '../../broker/handler.js'
import type { Topic } from '../../broker/partition.js'
import type { ReplicaManager } from '../../broker/cluster/replica-manager.js'

export interface CallOptions {
  apiVersion: number
  /** Aborting it is the connection closing. */
  signal?: AbortSignal
  /** Called when the handler says it waits on others or on time (RequestContext.parked). */
  onParked?: () => void
  /**
   * Where the answer's RequestContext.onAnswerSent callbacks go, for the test to run when it likes (the answer is
   * still in the socket until then). Without it they run as soon as the handler returns, as if sent at once.
   */
  unsent?: (() => void)[]
  /** The replicas of a cluster node, for handlers that consult them (a ReplicaManager the test drives with images). */
  replicas?: ReplicaManager
}

export interface InProcessNode {
  readonly dataDir: string
  readonly services: BrokerServices
  /** Runs `handler` on `request` with a context as a connection builds it. */
  call<Req, Res>(handler: HandlerEntry, request: Req, options: CallOptions): Promise<HandlerResult<Res>>
  /** Creates a topic through the topic registry (configs are Kafka's names and values). */
  createTopic(name: string, options?: { partitions?: number; configs?: Record<string, string> }): Promise<Topic>
  /** Closes the node and opens its data directory again, as a restart does; `whileClosed` runs in between (to damage a file, say). */
  reopen(options?: { whileClosed?: () => void }): Promise<InProcessNode>
  /** Closes the node and removes its data directory. */
  close(): Promise<void>
}

export async function openNode(config: Partial<BrokerConfig> = {}, dataDir = mkdtempSync(join(tmpdir(), 'brook-in-process-'))): Promise<InProcessNode> {
  // Batches kept for ever unless the test says otherwise, as for test processes (TEST_LOG_RETENTION_MS).
  const broker = await Broker.open({ logLevel: 'error', logRetentionMs: TEST_LOG_RETENTION_MS, ...config, dataDir })
  const { services } = broker
  return {
    dataDir,
    services,
    async call<Req, Res>(handler: HandlerEntry, request: Req, options: CallOptions): Promise<HandlerResult<Res>> {
      const context: RequestContext = {
        services: options.replicas ? { ...services, replicas: options.replicas } : services,
        apiVersion: options.apiVersion,
        clientId: 'in-process',
        remote: 'in-process',
        remoteHost: '127.0.0.1',
        signal: options.signal ?? new AbortController().signal,
        parked: () => options.onParked?.(),
        onAnswerSent: (callback) => sent.push(callback),
      }
      const sent: (() => void)[] = []
      const answer = (await handler.handle(request, context)) as HandlerResult<Res>
      if (options.unsent) options.unsent.push(...sent)
      else for (const callback of sent) callback()
      return answer
    },
    createTopic: (name, options = {}) =>
      services.topics.create({
        name,
        partitions: options.partitions ?? 1,
        replicationFactor: 1,
        config: services.topics.parseConfig(options.configs ?? {}),
      }),
    async reopen(options = {}) {
      await broker.stop()
      options.whileClosed?.()
      return openNode(config, dataDir)
    },
    async close() {
      await broker.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

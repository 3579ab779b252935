/**
 * Requests from one cluster node to the others (broker-to-broker: WriteTxnMarkers from a transaction coordinator to
 * partition leaders, AddPartitionsToTxn verifications from partition leaders to transaction coordinators), sent
 * through the client layer to the client listener each node registered, as the metadata image names it. One
 * connection per node (PeerChannel), made on demand, made again after any failure, and replaced when the node's
 * registered listener changes (a restart on another port). Connections are made from the node's own address (the
 * quorum runner's localAddress) where it has one.
 */
import type { ApiSpec } from '../../protocol/schema.js'
import { PeerChannel, type QuorumRunner } from './quorum-runner.js'

export class NodeChannels {
  private readonly channels = new Map<number, PeerChannel>()

  /** `clientId`: what the other nodes see in their logs; `timeoutMs`: a connect or request that takes longer fails. */
  constructor(
    private readonly quorum: QuorumRunner,
    private readonly options: { readonly clientId: string; readonly timeoutMs: number },
  ) {}

  /**
   * Sends `body` as `api` at `version` to node `nodeId`; rejects when the image has no listener for it, on a
   * connection failure, a timeout or a version the node does not serve.
   */
  request<Res>(nodeId: number, api: ApiSpec, version: number, body: unknown): Promise<Res> {
    const endpoint = this.quorum.controller.image.brokers.get(nodeId)?.endPoints[0]
    if (!endpoint) return Promise.reject(new Error(`node ${nodeId} has no registered listener`))
    let channel = this.channels.get(nodeId)
    if (!channel || channel.voter.host !== endpoint.host || channel.voter.port !== endpoint.port) {
      channel?.close()
      channel = new PeerChannel({ id: nodeId, host: endpoint.host, port: endpoint.port }, { ...this.options, localAddress: this.quorum.localAddress })
      this.channels.set(nodeId, channel)
    }
    return channel.request<Res>(api, version, body)
  }

  close(): void {
    for (const channel of this.channels.values()) channel.close()
    this.channels.clear()
  }
}

/**
 * The settings that make a node a member of a cluster: `controller.quorum.voters` (Kafka's `id@host:port,...`, the
 * voters' controller listeners) and the cluster id (Kafka's Uuid in base64url, as `kafka-storage random-uuid` prints).
 * Both are checked when `brook start` reads them and again when the node opens; problems are one-line errors.
 */
import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { hostPort, isUnspecifiedAddress } from '../../client/address.js'

/** One voter of the controller quorum: its node id and the address of its controller listener. */
export interface QuorumVoter {
  readonly id: number
  readonly host: string
  readonly port: number
}

/** `id@host:port`, an IPv6 host in brackets (`1@[::1]:9093`), as Kafka's QuorumConfig.parseVoterConnections reads it. */
const VOTER = /^(\d+)@(?:\[([^\]]+)\]|([^\[\]]+)):(\d+)$/

/**
 * Parses `controller.quorum.voters` (`1@127.0.0.1:19092,2@127.0.0.1:19093`) into voters sorted by id. Throws an Error
 * naming the bad entry: not `id@host:port`, an id or port out of range, an id or address given twice.
 */
export function parseQuorumVoters(text: string): QuorumVoter[] {
  const entries = text.split(',').map((entry) => entry.trim())
  if (entries.length === 0 || entries.every((entry) => entry === '')) throw new Error('controller.quorum.voters must name at least one voter (id@host:port)')
  const voters: QuorumVoter[] = []
  for (const entry of entries) {
    const match = VOTER.exec(entry)
    if (!match) throw new Error(`controller.quorum.voters: '${entry}' is not id@host:port`)
    const id = Number(match[1])
    const port = Number(match[4])
    if (!Number.isSafeInteger(id) || id > 2_147_483_647) throw new Error(`controller.quorum.voters: '${entry}' has an id out of range`)
    if (port < 1 || port > 65535) throw new Error(`controller.quorum.voters: '${entry}' has a port out of range (1-65535)`)
    if (voters.some((voter) => voter.id === id)) throw new Error(`controller.quorum.voters names voter ${id} twice`)
    // QuorumConfig.parseVoterConnections: "Host string (0.0.0.0) is not routeable". The other nodes connect to it.
    if (isUnspecifiedAddress(match[2] ?? match[3]!)) {
      throw new Error(`controller.quorum.voters: '${entry}' is not routable: the other nodes connect to a voter at its address; give the name or address they reach node ${id} by`)
    }
    // Kafka strips the brackets: the host is the address to listen on and connect to.
    const host = match[2] ?? match[3]!
    if (voters.some((voter) => voter.host === host && voter.port === port)) throw new Error(`controller.quorum.voters names ${hostPort(host, port)} twice`)
    voters.push({ id, host, port })
  }
  return voters.sort((a, b) => a.id - b.id)
}

/**
 * The local address a node connects to the other nodes from: its controller listener's host when that is one IP
 * address, so a node listening on 127.0.0.12 talks from 127.0.0.12 and the other nodes (and firewall rules) see one
 * address per node; undefined for a host name or a wildcard address (0.0.0.0, ::), where the operating system picks.
 */
export function sourceAddressOf(voter: QuorumVoter): string | undefined {
  return isIP(voter.host) !== 0 && !isUnspecifiedAddress(voter.host) ? voter.host : undefined
}

/** Throws unless `clusterId` is a Kafka Uuid in base64url (22 characters, 16 bytes). */
export function checkClusterId(clusterId: string): void {
  if (!/^[A-Za-z0-9_-]{22}$/.test(clusterId) || Buffer.from(clusterId, 'base64url').length !== 16) {
    throw new Error(`cluster id '${clusterId}' is not 16 bytes in base64url (22 characters, as \`brook cluster new-id\` prints)`)
  }
}

/**
 * A new cluster id: 16 random bytes in base64url, Kafka's Uuid.randomUuid().toString(). As Kafka's, it never starts
 * with '-' (one in 64 would), which a command line would take for an option (`--cluster-id -V...` prints the version).
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

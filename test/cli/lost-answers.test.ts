/**
 * `brook groups delete` and `brook topics delete` (the built CLI) when the broker's answer is lost on the way back: a
 * proxy (tcp-proxy.ts) forwards the request, the broker deletes, and the proxy swallows the answer and closes the
 * connection. The command sends the request again, finds the group or topic gone, and reports it deleted, since
 * that is what it asked for; a deletion of something that never existed still fails. The broker is a real process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { brokerBehindProxy, type ProxiedBroker } from '../helpers/tcp-proxy.js'
import { deleteGroups } from '../../protocol/messages/delete-groups.js'
import { deleteTopics } from '../../protocol/messages/delete-topics.js'
import { brook, lines } from './run-brook.js'

/** The group ids `brook groups list` prints (its table's first column). */
async function groupIds(server: readonly string[]): Promise<string[]> {
  return lines((await brook(['groups', 'list', ...server])).stdout).slice(1).map((line) => line.split(/\s+/)[0]!)
}

describe('brook deletions whose answer is lost', () => {
  let setup: ProxiedBroker
  let server: string[]

  beforeAll(async () => {
    setup = await brokerBehindProxy(FAST_GROUPS)
    server = ['--bootstrap-server', setup.address]
  })
  afterAll(async () => {
    await setup?.close()
  })

  it('groups delete sends DeleteGroups again after the answer is lost, finds the group gone, and says it was deleted', async () => {
    expect((await brook(['topics', 'create', 'meters', '--partitions', '2', ...server])).code).toBe(0)
    expect((await brook(['groups', 'reset-offsets', 'billing', '--topic', 'meters', '--to-earliest', '--execute', ...server])).code).toBe(0)
    expect(await groupIds(server)).toContain('billing')
    const apiKey = deleteGroups.request.apiKey
    const sentBefore = setup.proxy.requests.get(apiKey) ?? 0
    setup.proxy.dropNextAnswer(apiKey)
    const deleted = await brook(['groups', 'delete', 'billing', ...server])
    expect(deleted).toMatchObject({ code: 0, stdout: 'Deleted consumer group billing.\n', stderr: '' })
    // The first answer was swallowed after the broker deleted the group; the second request found it gone.
    expect(setup.proxy.dropped).toBe(1)
    expect(setup.proxy.requests.get(apiKey)! - sentBefore).toBe(2)
    expect(await groupIds(server)).not.toContain('billing')
    // Sent once, to a broker that answers, GROUP_ID_NOT_FOUND is still an error.
    expect(await brook(['groups', 'delete', 'billing', ...server])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "brook: cannot delete group 'billing': GROUP_ID_NOT_FOUND (the group does not exist)\n",
    })
  })

  it('topics delete sends DeleteTopics again after the answer is lost, finds the topic gone, and says it was deleted', async () => {
    expect((await brook(['topics', 'create', 'invoices', '--partitions', '1', ...server])).code).toBe(0)
    const apiKey = deleteTopics.request.apiKey
    const droppedBefore = setup.proxy.dropped
    const sentBefore = setup.proxy.requests.get(apiKey) ?? 0
    setup.proxy.dropNextAnswer(apiKey)
    const deleted = await brook(['topics', 'delete', 'invoices', ...server])
    expect(deleted).toMatchObject({ code: 0, stdout: 'Deleted topic invoices.\n', stderr: '' })
    expect(setup.proxy.dropped - droppedBefore).toBe(1)
    expect(setup.proxy.requests.get(apiKey)! - sentBefore).toBe(2)
    expect(lines((await brook(['topics', 'list', ...server])).stdout)).not.toContain('invoices')
    expect(await brook(['topics', 'delete', 'invoices', ...server])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "brook: cannot delete topic 'invoices': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n",
    })
  })
})

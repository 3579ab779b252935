/**
 * Followers' fetch sessions on their leader (KIP-227), the cache on its own: a full fetch with epoch 0 opens a
 * session, incremental fetches at the expected epoch update and forget partitions and are served every partition of
 * the session, the errors a follower starts afresh on (Kafka's FetchManager.newContext: a session emptied by
 * forgetting is closed, names and ids do not mix in one session), and the bounds: sessions kept, partitions in a session. (Followers fetching through sessions against real nodes
 * are in test/cluster/node/.)
 */
import { describe, expect, it } from 'vitest'
import { FetchSessions, MAX_FETCH_SESSIONS } from '../../broker/cluster/fetch-sessions.js'
import { ErrorCode } from '../../protocol/errors.js'
import type { FetchRequest } from '../../protocol/messages/fetch.js'

const TOPIC = { topic: '', topicId: '6c1c5c9e-6d5a-4a44-9a4e-3e1b1b2c3d4e' }

/** A replica Fetch naming `offsets` (partition -> fetch offset), forgetting `forgotten`. */
function request(sessionId: number, sessionEpoch: number, offsets: Record<number, bigint>, forgotten: number[] = []): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: 2, replicaEpoch: -1n },
    maxWaitMs: 500,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId,
    sessionEpoch,
    topics: [
      {
        ...TOPIC,
        partitions: Object.entries(offsets).map(([partition, fetchOffset]) => ({
          partition: Number(partition),
          currentLeaderEpoch: 3,
          fetchOffset,
          lastFetchedEpoch: 3,
          logStartOffset: -1n,
          partitionMaxBytes: 1 << 20,
          replicaDirectoryId: '00000000-0000-0000-0000-000000000000',
        })),
      },
    ],
    forgottenTopicsData: forgotten.length > 0 ? [{ ...TOPIC, partitions: forgotten }] : [],
    rackId: '',
  }
}

function served(fetch: ReturnType<FetchSessions['open']>): Record<number, bigint> {
  if (!('partitions' in fetch)) throw new Error(`error ${fetch.errorCode}`)
  return Object.fromEntries(fetch.partitions.map((p) => [p.partition, p.fetchOffset]))
}

describe('fetch sessions', () => {
  it('opens a session on a full fetch at epoch 0, then serves every partition of it to fetches that name only what changed', () => {
    const sessions = new FetchSessions()
    const opened = sessions.open(request(0, 0, { 0: 10n, 1: 20n, 2: 30n }), 2, 17)
    expect(opened).toMatchObject({ errorCode: ErrorCode.NONE, incremental: false })
    const id = (opened as { sessionId: number }).sessionId
    expect(id).toBeGreaterThan(0)
    expect(served(opened)).toEqual({ 0: 10n, 1: 20n, 2: 30n })

    const next = sessions.open(request(id, 1, { 1: 25n, 3: 5n }, [2]), 2, 17)
    expect(next).toMatchObject({ errorCode: ErrorCode.NONE, sessionId: id, incremental: true })
    expect(served(next)).toEqual({ 0: 10n, 1: 25n, 3: 5n })

    // Nothing changed: the session is served as it stands.
    expect(served(sessions.open(request(id, 2, {}), 2, 17))).toEqual({ 0: 10n, 1: 25n, 3: 5n })
    expect(sessions.size).toBe(1)
  })

  it('answers INVALID_FETCH_SESSION_EPOCH for an epoch other than the next, and FETCH_SESSION_ID_NOT_FOUND for a session it does not have or that is another replica\'s', () => {
    const sessions = new FetchSessions()
    const id = (sessions.open(request(0, 0, { 0: 1n }), 2, 17) as { sessionId: number }).sessionId
    expect(sessions.open(request(id, 1, {}), 2, 17)).toMatchObject({ errorCode: ErrorCode.NONE })
    // A repeat of epoch 1 (a retry of a request whose answer was lost) does not move the session again.
    expect(sessions.open(request(id, 1, { 0: 99n }), 2, 17)).toEqual({ errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH })
    expect(sessions.open(request(id, 5, {}), 2, 17)).toEqual({ errorCode: ErrorCode.INVALID_FETCH_SESSION_EPOCH })
    expect(served(sessions.open(request(id, 2, {}), 2, 17))).toEqual({ 0: 1n })
    expect(sessions.open(request(id + 1, 1, {}), 2, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
    expect(sessions.open(request(id, 3, {}), 3, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
  })

  it('keeps one session per follower: a new one replaces the old, and epoch -1 closes the one it names and opens none', () => {
    const sessions = new FetchSessions()
    const first = (sessions.open(request(0, 0, { 0: 1n }), 2, 17) as { sessionId: number }).sessionId
    const other = (sessions.open(request(0, 0, { 0: 1n }), 3, 17) as { sessionId: number }).sessionId
    const second = (sessions.open(request(0, 0, { 0: 2n }), 2, 17) as { sessionId: number }).sessionId
    expect(new Set([first, other, second]).size).toBe(3)
    expect(sessions.size).toBe(2)
    expect(sessions.open(request(first, 1, {}), 2, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })

    const final = sessions.open(request(second, -1, { 4: 7n }), 2, 17)
    expect(final).toMatchObject({ errorCode: ErrorCode.NONE, sessionId: 0, incremental: false })
    expect(served(final)).toEqual({ 4: 7n })
    expect(sessions.size).toBe(1)
    expect(sessions.open(request(second, 1, {}), 2, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
  })

  it('keeps at most maxSessions (1000 by default): a new one closes the one used least recently', () => {
    const sessions = new FetchSessions(3)
    const ids = [2, 3, 4].map((replica) => (sessions.open(request(0, 0, { 0: 1n }), replica, 17) as { sessionId: number }).sessionId)
    // Replica 2's session is used, so replica 3's is the least recently used when replica 5 opens one.
    expect(sessions.open(request(ids[0]!, 1, {}), 2, 17)).toMatchObject({ errorCode: ErrorCode.NONE })
    const fifth = (sessions.open(request(0, 0, { 0: 1n }), 5, 17) as { sessionId: number }).sessionId
    expect(sessions.size).toBe(3)
    expect(sessions.open(request(ids[1]!, 1, {}), 3, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
    expect(sessions.open(request(ids[0]!, 2, {}), 2, 17)).toMatchObject({ errorCode: ErrorCode.NONE })
    expect(sessions.open(request(ids[2]!, 1, {}), 4, 17)).toMatchObject({ errorCode: ErrorCode.NONE })
    expect(sessions.open(request(fifth, 1, {}), 5, 17)).toMatchObject({ errorCode: ErrorCode.NONE })

    const many = new FetchSessions()
    for (let replica = 0; replica < 3 * MAX_FETCH_SESSIONS; replica++) many.open(request(0, 0, { 0: 1n }), replica, 17)
    expect(many.size).toBe(MAX_FETCH_SESSIONS)
  })

  it('keeps no session of more than maxPartitions partitions: a full fetch is answered without one, an incremental one closes it', () => {
    const sessions = new FetchSessions(MAX_FETCH_SESSIONS, 3)
    expect(sessions.open(request(0, 0, { 0: 1n, 1: 1n, 2: 1n, 3: 1n }), 2, 17)).toMatchObject({ errorCode: ErrorCode.NONE, sessionId: 0 })
    expect(sessions.size).toBe(0)
    const opened = sessions.open(request(0, 0, { 0: 1n, 1: 1n }), 2, 17) as { sessionId: number }
    expect(opened.sessionId).toBeGreaterThan(0)
    expect(sessions.open(request(opened.sessionId, 1, { 2: 1n }), 2, 17)).toMatchObject({ errorCode: ErrorCode.NONE, sessionId: opened.sessionId })
    expect(sessions.partitionCount).toBe(3)
    expect(sessions.open(request(opened.sessionId, 2, { 3: 1n }), 2, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
    expect(sessions.size).toBe(0)
  })

  it('closes a session an incremental fetch leaves without partitions: that fetch gets no session (id 0), the next FETCH_SESSION_ID_NOT_FOUND (Kafka\'s FetchManager.newContext)', () => {
    const sessions = new FetchSessions()
    const id = (sessions.open(request(0, 0, { 0: 1n, 1: 1n }), 2, 17) as { sessionId: number }).sessionId
    const forgetAll = sessions.open(request(id, 1, {}, [0, 1]), 2, 17)
    expect(forgetAll).toMatchObject({ errorCode: ErrorCode.NONE, sessionId: 0, incremental: false })
    expect(served(forgetAll)).toEqual({})
    expect(sessions.size).toBe(0)
    expect(sessions.open(request(id, 2, {}), 2, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
  })

  it('answers FETCH_SESSION_TOPIC_ID_ERROR to a session opened by name (v12) continued by id (v13+) or the reverse, and keeps it', () => {
    const sessions = new FetchSessions()
    const byName = (sessions.open(request(0, 0, { 0: 1n }), 2, 12) as { sessionId: number }).sessionId
    expect(sessions.open(request(byName, 1, { 0: 2n }), 2, 13)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR })
    // The error does not move the session: the same epoch at v12 continues it.
    expect(served(sessions.open(request(byName, 1, { 0: 2n }), 2, 12))).toEqual({ 0: 2n })
    const byId = (sessions.open(request(0, 0, { 0: 1n }), 3, 13) as { sessionId: number }).sessionId
    expect(sessions.open(request(byId, 1, {}), 3, 12)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR })
  })

  it('answers FETCH_SESSION_ID_NOT_FOUND to session id 0 with an epoch below -1 (neither a full fetch nor a session)', () => {
    const sessions = new FetchSessions()
    expect(sessions.open(request(0, -2, { 0: 1n }), 2, 17)).toEqual({ errorCode: ErrorCode.FETCH_SESSION_ID_NOT_FOUND })
    expect(sessions.size).toBe(0)
  })

  it('closes the sessions of replicas no longer brokers', () => {
    const sessions = new FetchSessions()
    for (const replica of [2, 3, 4]) sessions.open(request(0, 0, { 0: 1n }), replica, 17)
    sessions.retain((replica) => replica !== 3)
    expect(sessions.size).toBe(2)
  })
})

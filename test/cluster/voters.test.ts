/**
 * Cluster ids (broker/cluster/voters.ts): a new one is a valid Kafka Uuid in base64url and, as Kafka's
 * Uuid.randomUuid, never starts with '-', which a command line would read as an option.
 */
import { expect, it } from 'vitest'
import { checkClusterId, newClusterId } from '../../broker/cluster/voters.js'

it('makes cluster ids that are 22 base64url characters and never start with a dash', () => {
  // Without the rule, one id in 64 starts with '-': 10,000 draws miss it with a chance below 1e-68.
  const ids = Array.from({ length: 10_000 }, () => newClusterId())
  for (const id of ids) checkClusterId(id)
  expect(ids.filter((id) => id.startsWith('-'))).toEqual([])
  expect(new Set(ids).size).toBe(ids.length)
})

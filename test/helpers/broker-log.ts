/**
 * What a broker process logged at ERROR level: a handler that threw, a failed store or cleaner pass. Scenario tests
 * check that none appeared, so a failure the clients happened to ride out still fails the test.
 */
import type { BrokerProcess } from './broker.js'

export function loggedErrors(broker: BrokerProcess): string[] {
  return broker.output().split('\n').filter((line) => / ERROR \[/.test(line))
}

/**
 * kafka-python 2.0.2 (Debian's python3-kafka) for tests that drive its producer, consumer and admin client through
 * `test/fixtures/kafka-python-client.py` (run with `fixtureAnswers` of confluent-kafka.ts). Such tests are skipped,
 * saying why, where it is missing.
 */
import { spawnSync } from 'node:child_process'
import { PYTHON } from './confluent-kafka.js'

/** Why kafka-python cannot run here, or null when it can. */
export function kafkaPythonMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import kafka'], { encoding: 'utf8' })
  if (probe.error) return `${PYTHON} cannot run: ${probe.error.message}`
  return probe.status === 0 ? null : `${PYTHON} has no kafka (apt-get install python3-kafka)`
}

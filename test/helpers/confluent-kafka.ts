/**
 * confluent-kafka-python (Debian's python3-confluent-kafka, on the system librdkafka) for tests that drive librdkafka's
 * AdminClient through the scripts in `test/fixtures/`. Such tests are skipped, saying why, where it is missing.
 */
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'

export const PYTHON = '/usr/bin/python3'

/** Why confluent-kafka-python cannot run here, or null when it can. */
export function confluentKafkaMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import confluent_kafka'], { encoding: 'utf8' })
  if (probe.error) return `${PYTHON} cannot run: ${probe.error.message}`
  return probe.status === 0 ? null : `${PYTHON} has no confluent_kafka (apt-get install python3-confluent-kafka)`
}

/** Runs `test/fixtures/<script>` with `args`; resolves with the JSON line each answer printed once it exits 0. */
export function fixtureAnswers<T>(script: string, args: string[]): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [join(import.meta.dirname, '..', 'fixtures', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${script} exited with ${code}: ${err}`))
      else resolve(out.trim().split('\n').map((line) => JSON.parse(line) as T))
    })
  })
}

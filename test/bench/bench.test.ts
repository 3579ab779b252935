/**
 * The bench harness itself, in a tiny run (a few MiB, a fraction of a second of TCP): the report has every scenario,
 * the ratios are numbers, every acknowledged record was fetched back, and the files are written. No timing is
 * asserted; the figures of a run this small mean nothing.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Report } from '../../bench/report.js'

const RUN = resolve(import.meta.dirname, '../../dist/bench/run.js')
const outDir = mkdtempSync(join(tmpdir(), 'brook-bench-test-'))

afterAll(() => rmSync(outDir, { recursive: true, force: true }))

describe('npm run bench', () => {
  it('reports every scenario of a tiny run, without errors', async () => {
    // A 1 MiB batch cache: the fetch right after produce reads most of the 4 MiB from LevelDB too.
    const args = ['--total-mb', '4', '--warmup-mb', '1', '--partitions', '2', '--tcp-seconds', '0.2', '--group-mb', '1', '--cache-max-mb', '1', '--out-dir', outDir, '--quiet']
    const { stdout } = await promisify(execFile)(process.execPath, [RUN, ...args], { timeout: 110_000 })

    expect(stdout).toContain('| **Brook produce** (acks=1) |')
    const files = readdirSync(outDir)
    const json = files.find((f) => f.endsWith('.json'))!
    expect(files).toContain(json.replace(/\.json$/, '.md'))
    const report = JSON.parse(readFileSync(join(outDir, json), 'utf8')) as Report
    expect(report.errors).toEqual([])
    const [run] = report.runs
    for (const scenario of [run!.tcp!, run!.raw.write, run!.raw.read, run!.raw.readReopened, run!.brook.produce, run!.brook.fetchWarm, run!.brook.fetchAfterRestart]) {
      expect(scenario.bytes).toBeGreaterThan(0)
      expect(scenario.MBps).toBeGreaterThan(0)
    }
    expect(run!.brook.fetchAfterRestart.records).toBe(run!.brook.produce.records)
    expect(run!.brook.fetchWarm.records).toBe(run!.brook.produce.records)
    expect(report.parameters.brokerCacheMaxBytes).toBe(1024 * 1024)
    // Both reads after reopening waited for LevelDB to be idle; how long is reported.
    expect(run!.brook.settledMs).toBeGreaterThanOrEqual(0)
    expect(run!.raw.readReopened.settledMs).toBeGreaterThanOrEqual(0)
    for (const ratio of Object.values(run!.ratios)) expect(Number.isFinite(ratio)).toBe(true)
    expect(report.machine.cores).toBeGreaterThan(0)
    // Consumer groups: every rebalance formed one generation of all its members, and the kafkajs member read it all.
    expect(run!.groups!.rebalance.map((r) => [r.initialDelayMs, r.members, r.generationMembers, r.firstRecordMs.length])).toEqual([
      [3000, 1, 1, 1],
      [3000, 3, 3, 3],
      [0, 1, 1, 1],
      [0, 3, 3, 3],
    ])
    expect(run!.groups!.kafkajsConsumer.records).toBe(run!.groups!.rawFetch.records)
  })
})

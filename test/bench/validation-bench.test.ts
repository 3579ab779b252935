/**
 * The bench's measurements of produce validation, in tiny runs: the harness with compressed batches and a
 * header-only broker, the in-process cost tables (validation, and the codec on a replicated produce's messages), and
 * the ListOffsets storm. No timing is asserted; what is asserted
 * is that each produces its figures, without errors or wrong answers.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { Report } from '../../bench/report.js'

const BENCH = resolve(import.meta.dirname, '../../dist/bench')
const run = promisify(execFile)
const outDir = mkdtempSync(join(tmpdir(), 'brook-validation-bench-'))

afterAll(() => rmSync(outDir, { recursive: true, force: true }))

describe('bench: produce validation', () => {
  it('npm run bench -- --compression lz4 --validation header-only stores and fetches back every record', async () => {
    const args = ['--total-mb', '4', '--warmup-mb', '1', '--partitions', '2', '--tcp-seconds', '0', '--group-mb', '0', '--compression', 'lz4', '--validation', 'header-only', '--out-dir', outDir, '--quiet']
    await run(process.execPath, [join(BENCH, 'run.js'), ...args], { timeout: 110_000 })
    const report = JSON.parse(readFileSync(join(outDir, readdirSync(outDir).find((f) => f.endsWith('.json'))!), 'utf8')) as Report
    expect(report.errors).toEqual([])
    expect(report.parameters).toMatchObject({ compression: 'lz4', validation: 'header-only' })
    expect(report.runs[0]!.brook.fetchAfterRestart.records).toBe(report.runs[0]!.brook.produce.records)
  })

  it('validation-cost.js prints a cost per batch for each check', async () => {
    const { stdout } = await run(process.execPath, [join(BENCH, 'validation-cost.js'), '--rounds', '300', '--codecs', 'none,lz4'], { timeout: 110_000 })
    const rows = stdout.split('\n').filter((line) => /^\| (header|worker)/.test(line))
    expect(rows.map((row) => row.split('|')[1]!.trim())).toEqual(['header only', 'header + records, none', 'header + records, lz4', 'worker pool, lz4'])
    for (const row of rows) expect(Number(row.split('|')[4])).toBeGreaterThan(0)
  })

  it('codec.js prints what encoding and decoding cost for each message, each of which decodes and encodes back to its bytes', async () => {
    const { stdout } = await run(process.execPath, [join(BENCH, 'codec.js'), '--rounds', '200'], { timeout: 110_000 })
    const rows = stdout.split('\n').filter((line) => /^\| (Fetch|Produce)/.test(line))
    expect(rows.map((row) => row.split('|')[1]!.trim())).toEqual(['Fetch v17 request', 'Fetch v17 response', 'Produce v9 request'])
    for (const row of rows) for (const column of [2, 3, 4]) expect(Number(row.split('|')[column])).toBeGreaterThan(0)
  })

  it('list-offsets-storm.js measures a Metadata client alone and during the storm, with every lookup right', async () => {
    const { stdout } = await run(process.execPath, [join(BENCH, 'list-offsets-storm.js'), '--partitions', '2', '--connections', '1', '--requests', '2'], { timeout: 110_000 })
    expect(stdout).toContain('; 0 wrong answers')
    expect(stdout).toMatch(/\| alone \| \d+ \|/)
    expect(stdout).toMatch(/\| during the storm \| \d+ \|/)
  })
})

/**
 * bench/cpu-hook.ts and cpu-report.ts, end to end: a nested vitest run (two fixture files in one shared worker, each
 * starting a `brook` command) with the hook in every process, then the report built from the log it wrote.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { cpuReport, formatCpuReport, processKind } from '../../bench/cpu-report.js'
import { runNestedVitest } from '../helpers/nested-vitest.js'

const dir = mkdtempSync(join(tmpdir(), 'brook-cpu-report-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

it('attributes each process a test file starts, and its worker\'s CPU while it ran the file, to that file', async () => {
  const log = join(dir, 'cpu.jsonl')
  const hook = resolve(import.meta.dirname, '../../dist/bench/cpu-hook.js')
  const run = await runNestedVitest('test/fixtures/cpu-report/config.ts', { NODE_OPTIONS: `--import ${hook}`, BROOK_CPU_LOG: log })
  expect(run.code, run.output).toBe(0)

  const report = cpuReport(readFileSync(log, 'utf8').split('\n').filter((line) => line !== ''))
  const first = report.files.find((file) => file.file === 'fixtures/cpu-report/first.ts')
  const second = report.files.find((file) => file.file === 'fixtures/cpu-report/second.ts')
  expect(first?.processes).toBe(1)
  expect([...first!.byKind.keys()]).toEqual(['brook --version'])
  expect(second?.processes).toBe(1)
  expect([...second!.byKind.keys()]).toEqual(['brook cluster new-id'])
  // Both files ran in one worker, and its CPU while it ran each went to that file.
  expect(first!.worker).toBeGreaterThan(0)
  expect(second!.worker).toBeGreaterThan(0)
  expect(report.byKind.get('vitest worker')?.count).toBe(1)
  expect(report.byKind.get('vitest main')?.count).toBe(1)
  expect(formatCpuReport(report, 5)).toContain('fixtures/cpu-report/first.ts')
})

it('names processes by what they run', () => {
  expect(processKind('dist/cli/brook.js start --port 0')).toBe('brook start')
  expect(processKind('dist/cli/brook.js topics create t --partitions 2')).toBe('brook topics create')
  expect(processKind('dist/cli/brook.js produce t')).toBe('brook produce')
  expect(processKind('/work/node_modules/vitest/dist/workers/forks.js')).toBe('vitest worker')
  expect(processKind('/usr/bin/python3 x.py')).toBe('other: /usr/bin/python3')
})

/**
 * Where a test run's CPU went, from the log `cpu-hook.js` wrote: by kind of process (nodes, each `brook` command,
 * vitest's workers and main process, the rest) and by test file (its worker's CPU while it ran the file, and every
 * process the file started, with the commands that cost most).
 *
 *   node dist/bench/cpu-report.js /tmp/cpu.jsonl [--top 40]   # --help: the options
 *
 * Seconds are CPU seconds (user + system, every thread). A process killed with SIGKILL lost at most its last 3 s.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { benchCommand, number } from './args.js'
import type { CpuSample } from './cpu-hook.js'

/** A process: its samples, oldest first. */
interface Process {
  samples: CpuSample[]
  first: CpuSample
  last: CpuSample
}

/** A test file's share of the run. */
export interface FileCpu {
  file: string
  /** CPU of the worker while it ran the file. */
  worker: number
  /** CPU of the processes the file started (and theirs), and how many. */
  started: number
  processes: number
  /** The started processes by kind: CPU seconds and count. */
  byKind: Map<string, { cpu: number; count: number }>
}

/** The report: totals by kind of process, and by test file (largest first). */
export interface CpuReport {
  total: number
  processes: number
  byKind: Map<string, { cpu: number; count: number }>
  files: FileCpu[]
  /** CPU of processes attributed to no test file (vitest's main process, the hooks of global setup). */
  unattributed: number
}

const cpuOf = (sample: CpuSample): number => sample.user + sample.sys

/** What kind of process a command line is: `brook start`, `brook topics create`, `vitest worker`, ... */
export function processKind(argv: string): string {
  if (/vitest\/dist\/workers\//.test(argv)) return 'vitest worker'
  if (/vitest\.mjs|bin\/vitest/.test(argv)) return 'vitest main'
  const brook = /brook\.js (\S+)(?: (\S+))?/.exec(argv)
  if (brook) return ['topics', 'groups', 'transactions', 'cluster'].includes(brook[1]!) && brook[2] !== undefined ? `brook ${brook[1]} ${brook[2]}` : `brook ${brook[1]}`
  return `other: ${argv.split(' ')[0]}`
}

/** Builds the report from the log's lines (JSON, one sample each; lines that do not parse are skipped). */
export function cpuReport(lines: readonly string[]): CpuReport {
  const byPid = new Map<number, CpuSample[]>()
  for (const line of lines) {
    let sample: CpuSample
    try {
      sample = JSON.parse(line) as CpuSample
    } catch {
      continue
    }
    const list = byPid.get(sample.pid) ?? []
    list.push(sample)
    byPid.set(sample.pid, list)
  }
  const processes: Process[] = [...byPid.values()].map((samples) => {
    samples.sort((a, b) => a.at - b.at)
    return { samples, first: samples[0]!, last: samples.at(-1)! }
  })
  const files = new Map<string, FileCpu>()
  const fileOf = (file: string): FileCpu => {
    let entry = files.get(file)
    if (!entry) files.set(file, (entry = { file, worker: 0, started: 0, processes: 0, byKind: new Map() }))
    return entry
  }
  const tally = (map: Map<string, { cpu: number; count: number }>, kind: string, cpu: number): void => {
    const entry = map.get(kind) ?? { cpu: 0, count: 0 }
    entry.cpu += cpu
    entry.count++
    map.set(kind, entry)
  }
  const report: CpuReport = { total: 0, processes: processes.length, byKind: new Map(), files: [], unattributed: 0 }
  for (const { samples, first, last } of processes) {
    const kind = processKind(first.argv)
    const cpu = cpuOf(last)
    report.total += cpu
    tally(report.byKind, kind, cpu)
    if (kind === 'vitest worker') {
      // Each interval goes to the file the worker ran in it: the one a switch sample leaves, else the sample's own.
      let previous: CpuSample | null = null
      for (const sample of samples) {
        const spent = cpuOf(sample) - (previous === null ? 0 : cpuOf(previous))
        const file = sample.kind === 'switch' ? (previous?.file ?? '') : sample.file
        if (file === '') report.unattributed += spent
        else fileOf(file).worker += spent
        previous = sample
      }
      continue
    }
    if (first.file === '') {
      report.unattributed += cpu
      continue
    }
    const entry = fileOf(first.file)
    entry.started += cpu
    entry.processes++
    tally(entry.byKind, kind, cpu)
  }
  report.files = [...files.values()].sort((a, b) => b.worker + b.started - (a.worker + a.started))
  return report
}

/** The report as text: kinds, then the `top` costliest files with their costliest kinds of process. */
export function formatCpuReport(report: CpuReport, top: number): string {
  const seconds = (value: number): string => value.toFixed(1).padStart(8)
  const out = [`${report.total.toFixed(0)} CPU-seconds in ${report.processes} processes; ${report.unattributed.toFixed(0)} attributed to no test file`, '', 'by kind of process:']
  for (const [kind, { cpu, count }] of [...report.byKind].sort((a, b) => b[1].cpu - a[1].cpu)) {
    out.push(`${seconds(cpu)}  ${String(count).padStart(5)} × ${(cpu / count).toFixed(2)}  ${kind}`)
  }
  out.push('', `by test file (worker + the processes it started), the ${Math.min(top, report.files.length)} costliest:`)
  for (const file of report.files.slice(0, top)) {
    const kinds = [...file.byKind].sort((a, b) => b[1].cpu - a[1].cpu).slice(0, 5).map(([kind, { cpu, count }]) => `${kind} ${count}× ${cpu.toFixed(0)} s`)
    out.push(`${seconds(file.worker + file.started)}  worker ${file.worker.toFixed(1)}, ${file.processes} processes ${file.started.toFixed(1)}  ${file.file}${kinds.length > 0 ? `\n            ${kinds.join(', ')}` : ''}`)
  }
  return `${out.join('\n')}\n`
}

const COMMAND = benchCommand(
  'cpu-report',
  'cpu-report <log.jsonl> [--top 40]',
  'Where a test run\'s CPU went, from the log bench/cpu-hook.ts wrote (NODE_OPTIONS="--import $PWD/dist/bench/cpu-hook.js" BROOK_CPU_LOG=<log> npx vitest run): by kind of process and by test file.',
)
  .argument('<log.jsonl>', 'the log BROOK_CPU_LOG named')
  .option('--top <n>', 'how many test files to list', number(1), 40)

// Run as a script; imported (by its test), it only exports.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  COMMAND.parse()
  const [path] = COMMAND.args as [string]
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    console.error(`cpu-report: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    process.exit(1)
  }
  process.stdout.write(formatCpuReport(cpuReport(text.split('\n').filter((line) => line !== '')), COMMAND.opts().top))
}

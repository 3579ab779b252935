/**
 * The bench scripts' command lines (commander, through bench/args.ts), run as a user runs them, from dist/: `--help`
 * prints the usage and exits 0; bad input gets one plain line on stderr and exit status 2, never a stack trace. Every case fails or
 * exits before a broker or a database is started, so the file takes a second or two.
 */
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'

const BENCH = resolve(import.meta.dirname, '../../dist/bench')

function runScript(script: string, args: string[], variables: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  // No BENCH_<NAME> variables from the environment of whoever runs the tests: run.js would read them.
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BENCH_'))), ...variables }
  const run = spawnSync(process.execPath, [resolve(BENCH, script), ...args], { encoding: 'utf8', timeout: 30_000, env })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

/** Each script, the error-line prefix it uses, and one of its numeric flags. */
const SCRIPTS = [
  { script: 'run.js', name: 'bench', numeric: '--total-mb' },
  { script: 'cluster.js', name: 'cluster', numeric: '--repeat' },
  { script: 'partitions.js', name: 'partitions', numeric: '--partitions' },
  { script: 'time-index.js', name: 'time-index', numeric: '--records' },
  { script: 'write-size.js', name: 'write-size', numeric: '--runs' },
  { script: 'processor-chaos.js', name: 'processor-chaos', numeric: '--seed' },
  { script: 'nemesis.js', name: 'nemesis', numeric: '--seed' },
  { script: 'global-table.js', name: 'global-table', numeric: '--cache-mb' },
] as const

describe('bench scripts on the command line', () => {
  for (const { script, name, numeric } of SCRIPTS) {
    it(`${script} --help prints its usage, with ${numeric}, and exits 0`, () => {
      const { status, stdout, stderr } = runScript(script, ['--help'])
      expect(status).toBe(0)
      expect(stdout).toMatch(/^Usage: node (--expose-gc )?dist\/bench\/|^Usage: npm run bench /)
      expect(stdout).toContain(`  ${numeric} <n>`)
      expect(stderr).toBe('')
    })

    it(`${script} answers an unknown flag and a non-numeric value with one line, exit 2`, () => {
      const unknown = runScript(script, ['--no-such-flag'])
      expect(unknown.status).toBe(2)
      expect(unknown.stderr).toBe(`${name}: unknown option '--no-such-flag' (--help lists the options)\n`)
      const notANumber = runScript(script, [numeric, 'lots'])
      expect(notANumber.status).toBe(2)
      expect(notANumber.stderr).toBe(`${name}: option '${numeric} <n>' argument 'lots' is invalid. Expected a non-negative number. (--help lists the options)\n`)
      for (const { stdout, stderr } of [unknown, notANumber]) {
        expect(stdout).toBe('')
        expect(stderr).not.toMatch(/^\s+at /m)
      }
    })
  }

  it('names a flag left without its value, given one for a flag that takes none, or given a negative number', () => {
    const cases = [
      { script: 'cluster.js', args: ['--rate'], line: "cluster: option '--rate <n>' argument missing (--help lists the options)\n" },
      { script: 'partitions.js', args: ['--kill=yes'], line: "partitions: unknown option '--kill=yes' (--help lists the options)\n" },
      { script: 'time-index.js', args: ['--rounds', '-1'], line: "time-index: option '--rounds <n>' argument '-1' is invalid. Expected a non-negative number. (--help lists the options)\n" },
      { script: 'cache-memory.js', args: ['--runs', '0'], line: "cache-memory: option '--runs <n>' argument '0' is invalid. Expected a number of at least 1. (--help lists the options)\n" },
      { script: 'time-index.js', args: ['extra'], line: 'time-index: too many arguments. Expected 0 arguments but got 1. (--help lists the options)\n' },
    ]
    for (const { script, args, line } of cases) {
      const { status, stdout, stderr } = runScript(script, args)
      expect(status).toBe(2)
      expect(stdout).toBe('')
      expect(stderr).toBe(line)
    }
  })

  it('checks a list of numbers, a choice and a number read from a BENCH_ variable', () => {
    expect(runScript('write-size.js', ['--sizes-kib', '64,big']).stderr).toBe(
      "write-size: option '--sizes-kib <n,...>' argument '64,big' is invalid. Expected a comma-separated list of non-negative numbers. (--help lists the options)\n",
    )
    expect(runScript('run.js', ['--compression', 'brotli']).stderr).toBe(
      "bench: option '--compression <codec>' argument 'brotli' is invalid. Allowed choices are none, gzip, snappy, lz4, zstd. (--help lists the options)\n",
    )
    const fromEnv = runScript('run.js', [], { BENCH_WINDOW: 'wide' })
    expect(fromEnv.status).toBe(2)
    expect(fromEnv.stderr).toBe("bench: option '--window <n>' value 'wide' from env 'BENCH_WINDOW' is invalid. Expected a non-negative number. (--help lists the options)\n")
  })

  it('a script that needs a positional argument says which one is missing', () => {
    const { status, stderr } = runScript('profile-summary.js', [])
    expect(status).toBe(2)
    expect(stderr).toBe("profile-summary: missing required argument 'file.cpuprofile' (--help lists the options)\n")
  })
})

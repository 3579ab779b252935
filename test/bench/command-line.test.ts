/**
 * The bench scripts' command lines (bench/args.ts), run as a user runs them, from dist/: `--help` prints the usage
 * and exits 0; bad input gets one plain line on stderr and exit status 2, never a stack trace. Every case fails or
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
] as const

describe('bench scripts on the command line', () => {
  for (const { script, name, numeric } of SCRIPTS) {
    it(`${script} --help prints its usage, with ${numeric}, and exits 0`, () => {
      const { status, stdout, stderr } = runScript(script, ['--help'])
      expect(status).toBe(0)
      expect(stdout).toMatch(/^usage: /)
      expect(stdout).toContain(`  ${numeric} <n>`)
      expect(stderr).toBe('')
    })

    it(`${script} answers an unknown flag and a non-numeric value with one line, exit 2`, () => {
      const unknown = runScript(script, ['--no-such-flag'])
      expect(unknown.status).toBe(2)
      expect(unknown.stderr).toBe(`${name}: unknown option '--no-such-flag' (--help lists the options)\n`)
      const notANumber = runScript(script, [numeric, 'lots'])
      expect(notANumber.status).toBe(2)
      expect(notANumber.stderr).toBe(`${name}: ${numeric} must be a non-negative number, not 'lots' (--help lists the options)\n`)
      for (const { stdout, stderr } of [unknown, notANumber]) {
        expect(stdout).toBe('')
        expect(stderr).not.toMatch(/^\s+at /m)
      }
    })
  }

  it('names a flag left without its value, or given one for a flag that takes none', () => {
    expect(runScript('cluster.js', ['--rate']).stderr).toBe('cluster: --rate needs a value (--help lists the options)\n')
    expect(runScript('cluster.js', ['--broker-args', '--fsync']).stderr).toBe(
      "cluster: --broker-args needs a value: give one that starts with '-' as --broker-args=--fsync (--help lists the options)\n",
    )
    expect(runScript('partitions.js', ['--kill=yes']).stderr).toBe('partitions: --kill takes no value (--help lists the options)\n')
    expect(runScript('time-index.js', ['--rounds', '-1']).status).toBe(2)
  })

  it('checks a list of numbers, a choice and a number read from a BENCH_ variable', () => {
    expect(runScript('write-size.js', ['--sizes-kib', '64,big']).stderr).toBe(
      "write-size: --sizes-kib must be a comma-separated list of non-negative numbers, not '64,big' (--help lists the options)\n",
    )
    expect(runScript('run.js', ['--compression', 'zstd']).stderr).toBe("bench: --compression must be one of none, gzip, snappy, lz4, not 'zstd' (--help lists the options)\n")
    const fromEnv = runScript('run.js', [], { BENCH_WINDOW: 'wide' })
    expect(fromEnv.status).toBe(2)
    expect(fromEnv.stderr).toBe("bench: BENCH_WINDOW must be a non-negative number, not 'wide' (--help lists the options)\n")
  })

  it('a script that needs a positional argument says which one is missing', () => {
    const { status, stderr } = runScript('profile-summary.js', [])
    expect(status).toBe(2)
    expect(stderr).toBe('profile-summary: <file.cpuprofile> is missing (--help lists the options)\n')
  })
})

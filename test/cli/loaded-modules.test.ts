/**
 * What a `brook` command loads before it prints its help or refuses its arguments: not kafkajs, nor the processor's
 * runtime, nor the simulator's runs, which only a command that runs a pipeline or a fleet needs (issue 7: they made
 * every refused `brook process` or `brook simulate` cost 0.4-0.5 CPU-s where 0.2 s will do), nor Brook's client,
 * which only a command that connects needs. The modules are those the module loader loads in the command's own
 * process, recorded by helpers/loaded-modules.mjs.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { brook, expectOneLineError, type CliResult } from './run-brook.js'
import { removedAtFileEnd } from '../helpers/file-end.js'

const RECORDER = resolve(import.meta.dirname, '../helpers/loaded-modules.mjs')
const FIXTURES = resolve(import.meta.dirname, '../fixtures/pipelines')

/** What a command that only checks its arguments has no use for, by the URL of the module that is its entry. */
const RUNTIME: readonly { name: string; url: RegExp }[] = [
  { name: 'kafkajs', url: /\/node_modules\/kafkajs\/index\.js$/ },
  { name: "the processor's index", url: /\/dist\/processor\/index\.js$/ },
  { name: "the processor's runtime", url: /\/dist\/processor\/runtime\/runner\.js$/ },
  { name: "the simulator's index", url: /\/dist\/processor\/simulator\/index\.js$/ },
  { name: "Brook's client", url: /\/dist\/client\/cluster-client\.js$/ },
]

const directories = removedAtFileEnd()
const dir = mkdtempSync(join(tmpdir(), 'brook-loaded-modules-'))
directories.push(dir)
let runs = 0

/** Runs `brook args` with the recorder preloaded: its result, and the names of RUNTIME it loaded. */
async function brookLoading(args: readonly string[]): Promise<{ result: CliResult; loaded: string[] }> {
  const log = join(dir, `run-${++runs}.log`)
  const result = await brook(args, { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import "${RECORDER}"`, BROOK_LOADED_MODULES: log } })
  const urls = readFileSync(log, 'utf8').split('\n')
  return { result, loaded: RUNTIME.filter(({ url }) => urls.some((line) => url.test(line))).map(({ name }) => name) }
}

// Nothing listens here: every command below is refused before it would connect.
const nowhere = ['--bootstrap-server', '127.0.0.1:1']

describe('the modules a brook command loads', () => {
  // The recorder sees them where they are loaded: a pipeline module imports 'brook', whose index is the processor's,
  // a replay reads its files in the simulator's run, after loading it, and a client command connects.
  it('sees kafkajs and the processor loaded by a pipeline module, the simulator by a replay, and the client by a client command', async () => {
    const described = await brookLoading(['process', join(FIXTURES, 'printing.mjs'), '--describe', ...nowhere])
    expect(described.result.code, described.result.stderr).toBe(0)
    expect(described.loaded).toEqual(expect.arrayContaining(['kafkajs', "the processor's index", "the processor's runtime"]))
    const replay = await brookLoading(['simulate', '--replay', 'nope.csv', '--sensor', 'temperature', ...nowhere])
    expectOneLineError(replay.result, 'cannot read nope.csv: no such file')
    expect(replay.loaded).toEqual(expect.arrayContaining(['kafkajs', "the simulator's index"]))
    const listed = await brookLoading(['topics', 'list', ...nowhere])
    expectOneLineError(listed.result, 'cannot connect')
    expect(listed.loaded).toEqual(["Brook's client"])
  })

  it.each([
    [['process', 'nope.ts', ...nowhere], 'cannot read nope.ts: no such file'],
    [['process', 'iott', ...nowhere], "'iott' is neither the built-in 'iot' pipeline nor a file"],
    [['process', 'iot', '--stats-window', '0', ...nowhere], '--stats-window must be more than 0 ms'],
    [['process', 'iot', '--compression-type', 'brotli', ...nowhere], 'Allowed choices are none, gzip, snappy, lz4, zstd'],
    [['process', 'iot', '--average-advance', '10m', ...nowhere], 'must not exceed its size'],
    [['simulate', '--devices', '0', ...nowhere], '--devices must be a whole number from 1'],
    [['simulate', '--kafka-config', 'nope.json', ...nowhere], 'cannot read nope.json: no such file'],
    // Refused before it starts a cluster or makes a data directory.
    [['demo', '--stats-topic', 'readings'], 'topic readings is both read and written by this pipeline'],
    [['demo', '--nodes', '0'], '--nodes must be between 1 and 9'],
    [['dev', '--nodes', '0'], '--nodes must be between 1 and 9'],
    [['start', '--port', 'x'], '--port must be a whole number'],
    [['topics', 'create', 't', '--partitions', '0', ...nowhere], '--partitions must be'],
    [['topics', 'alter-config', 't', ...nowhere], 'give at least one --set key=value or --delete key'],
    [['groups', 'list', '--state', 'Sleeping', ...nowhere], "--state takes Stable, PreparingRebalance, CompletingRebalance, Empty, Dead, not 'Sleeping'"],
    [['groups', 'reset-offsets', 'g', '--all-topics', ...nowhere], 'give exactly one of --to-earliest'],
    [['transactions', 'describe-producers', '--topic', 't', '--partition', '-1', ...nowhere], '--partition must be'],
  ])('brook %j is refused without loading kafkajs, the processor\'s runtime or Brook\'s client', async (args, message) => {
    const { result, loaded } = await brookLoading(args)
    expectOneLineError(result, message)
    expect(loaded).toEqual([])
  })

  it.each([[['process', '--help']], [['simulate', '--help']], [['demo', '--help']], [['dev', '--help']]])('brook %j prints its help without loading them', async (args) => {
    const { result, loaded } = await brookLoading(args)
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain('Usage: brook')
    expect(loaded).toEqual([])
  })

  it('brook cluster new-id prints a cluster id without loading them', async () => {
    const { result, loaded } = await brookLoading(['cluster', 'new-id'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^[A-Za-z0-9_-]{22}\n$/)
    expect(loaded).toEqual([])
  })

  it('brook --help, which declares every command, loads neither kafkajs nor the processor', async () => {
    const { result, loaded } = await brookLoading(['--help'])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toContain('Usage: brook')
    // The client commands' groups import Brook's client with their commands.
    expect(loaded.filter((name) => name !== "Brook's client")).toEqual([])
  })
})

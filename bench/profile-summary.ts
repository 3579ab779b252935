/**
 * Summarizes a V8 .cpuprofile (from `node --cpu-prof`, or `npm run bench -- --broker-cpu-prof <dir>`): where the
 * main thread's time went, by function (self time), by module, and for a few functions that matter to Brook's hot
 * paths, including what they call (inclusive time).
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [--from-ms 1200 --to-ms 9800] [--top 25]   # --help: the options
 *
 * --from-ms/--to-ms cut the profile to a time window since the profile started (the bench report's `phases` gives
 * each scenario's window, in ms since the broker process was spawned; the profile starts a few ms later).
 * Only the main (JavaScript) thread is sampled: LevelDB's writes and compactions run on other threads and show here
 * only as the main thread being idle; the bench report's CPU split (main thread vs. the whole process) covers them.
 */
import { readFileSync } from 'node:fs'
import { badCommandLine, benchCommand, number } from './args.js'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

/** Functions whose inclusive time tells where a produce or a fetch spends it. */
const WATCHED = [
  'onData',
  'handleFrame',
  'decodeRequestHeader',
  'decode',
  'encodeResponseFrame',
  'complete',
  'checkProducedBatch',
  'computeCrc',
  'crc32c',
  'append',
  'appendAsLeader',
  'drainInto',
  'flush',
  'pack',
  'read',
  'readTail',
  'nextv',
  'writeGeneric',
  'writev',
  'writevGeneric',
  'processTicksAndRejections',
]

function label(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)'
  if (!frame.url) return name
  const short = frame.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')
  return `${name} ${short}:${frame.lineNumber + 1}`
}

/** A module name for grouping: a package, a project file, a node: builtin, or V8's own pseudo-frames. */
function moduleOf(frame: CallFrame): string {
  if (!frame.url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url)
  if (pkg) return pkg[1]!
  const project = /\/dist\/(.+)$/.exec(frame.url)
  if (project) return project[1]!
  return frame.url.replace(/^node:internal\//, 'node:')
}

const COMMAND = benchCommand(
  'profile-summary',
  'node dist/bench/profile-summary.js <file.cpuprofile> [options]',
  "Where a .cpuprofile's main-thread time went: by function, by module, and a few watched functions' inclusive time.",
)
  .argument('<file.cpuprofile>', 'the profile, as node --cpu-prof writes it')
  .option('--from-ms <n>', 'start of the time window, ms since the profile started', number(), 0)
  .option('--to-ms <n>', 'end of the time window (default: the end of the profile)', number())
  .option('--top <n>', 'functions and modules listed', number(), 25)

function main(): void {
  const parsed = COMMAND.parse()
  const values = parsed.opts()
  const [file] = parsed.processedArgs
  let profile: Profile
  try {
    profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  } catch (error) {
    badCommandLine(COMMAND, `cannot read ${file} as a .cpuprofile: ${(error as Error).message}`)
  }
  const fromUs = values.fromMs * 1000
  const toUs = values.toMs === undefined ? Infinity : values.toMs * 1000
  const top = values.top

  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

  const self = new Map<number, number>()
  let elapsed = 0
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    elapsed += profile.timeDeltas[i]!
    // A sample's delta is the time since the previous one; it is charged to this sample's frame.
    if (elapsed < fromUs || elapsed > toUs) continue
    const delta = profile.timeDeltas[i]!
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + delta)
    total += delta
  }

  const selfByLabel = new Map<string, number>()
  const selfByModule = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame
    selfByLabel.set(label(frame), (selfByLabel.get(label(frame)) ?? 0) + us)
    selfByModule.set(moduleOf(frame), (selfByModule.get(moduleOf(frame)) ?? 0) + us)
    // Each watched name is counted once per sample, however deep it recurs in the stack.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = byId.get(at)!.callFrame.functionName
      if (WATCHED.includes(name) && !seen.has(name)) {
        seen.add(name)
        inclusive.set(name, (inclusive.get(name) ?? 0) + us)
      }
    }
  }

  const idle = selfByLabel.get('(idle)') ?? 0
  const busy = total - idle
  const row = (us: number): string => `${(us / 1000).toFixed(0).padStart(8)} ms ${((us / total) * 100).toFixed(1).padStart(5)}%`
  const print = (title: string, entries: Map<string, number>, limit: number): void => {
    console.log(`\n${title}`)
    for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, limit)) console.log(`${row(us)}  ${name}`)
  }
  console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, main thread busy ${((busy / total) * 100).toFixed(0)}%, idle ${((idle / total) * 100).toFixed(0)}%`)
  print(`Self time by function (top ${top})`, selfByLabel, top)
  print('Self time by module', selfByModule, 30)
  print('Inclusive time of hot-path functions (by name; all files)', inclusive, WATCHED.length)
}

main()

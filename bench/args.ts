/**
 * The bench scripts' command lines. Each script describes its flags once, in a table with a line of help per flag;
 * the parsing and the `--help` text both come from that table.
 *
 *   --help                  the usage on stdout, exit 0 (before anything else is looked at)
 *   bad input               one line on stderr, `<script>: <what is wrong> (--help lists the options)`, exit 2:
 *                           an unknown flag, a flag without its value, a value for a flag that takes none, a number
 *                           that is not a number or is below its minimum (0 unless the flag says otherwise), a value
 *                           outside the flag's choices, a missing or an extra positional argument
 *
 * A value that starts with '-' must be attached with '=' (`--broker-args="--fsync"`), as node:util parseArgs's strict
 * mode requires: `--broker-args --fsync` is a flag without its value. A flag given twice keeps its last value.
 */
import { parseArgs } from 'node:util'

/** One flag: its kind, its default (without one the value is undefined unless given), a line of help. */
export type Flag =
  | { readonly type: 'boolean'; readonly help: string }
  | { readonly type: 'number'; readonly default?: number; readonly min?: number; readonly help: string; readonly value?: string }
  | { readonly type: 'numbers'; readonly default?: readonly number[]; readonly help: string; readonly value?: string }
  | { readonly type: 'string'; readonly default?: string; readonly choices?: readonly string[]; readonly help: string; readonly value?: string }

export type Flags = Readonly<Record<string, Flag>>

type Defaulted<F, T> = F extends { default: unknown } ? T : T | undefined
type ValueOf<F extends Flag> = F extends { type: 'boolean' }
  ? boolean
  : F extends { type: 'number' }
    ? Defaulted<F, number>
    : F extends { type: 'numbers' }
      ? Defaulted<F, number[]>
      : F extends { choices: readonly (infer C extends string)[] }
        ? Defaulted<F, C>
        : Defaulted<F, string>

/** The parsed flags, by flag name: booleans are false unless given, numbers are numbers, lists are arrays. */
export type FlagValues<F extends Flags> = { -readonly [K in keyof F]: ValueOf<F[K]> }

export interface Command<F extends Flags> {
  /** What error lines start with, e.g. 'cluster'. */
  name: string
  /** How the script is run, the usage's first line, e.g. 'node dist/bench/cluster.js [options]'. */
  usage: string
  /** What it does, a line or two under the usage. */
  about: string
  flags: F
  /** Positional arguments it requires, named as in the usage (e.g. '<file.cpuprofile>'); none by default. */
  positionals?: readonly string[]
  /**
   * An environment prefix: a flag not given (booleans aside) is read from `<prefix><FLAG_NAME>`, so with 'BENCH_'
   * --total-mb comes from BENCH_TOTAL_MB. The flag wins over the variable, the variable over the default.
   */
  env?: string
}

function envName(prefix: string, flag: string): string {
  return `${prefix}${flag.toUpperCase().replaceAll('-', '_')}`
}

function placeholder(flag: Flag): string {
  if (flag.type === 'boolean') return ''
  if (flag.value) return ` ${flag.value}`
  if (flag.type === 'number') return ' <n>'
  if (flag.type === 'numbers') return ' <n,...>'
  return flag.choices ? ` <${flag.choices.join('|')}>` : ' <value>'
}

/** The `--help` text: the usage line, what the script does, then one line per flag with its default. */
export function usage<F extends Flags>(command: Command<F>): string {
  const rows = Object.entries(command.flags).map(([name, flag]): [string, string] => {
    const notes = [
      ...('default' in flag && flag.default !== undefined && String(flag.default) !== '' ? [`default ${String(flag.default)}`] : []),
      ...(command.env && flag.type !== 'boolean' ? [`env ${envName(command.env, name)}`] : []),
    ]
    return [`--${name}${placeholder(flag)}`, notes.length > 0 ? `${flag.help} (${notes.join('; ')})` : flag.help]
  })
  rows.push(['--help', 'this text'])
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return [`usage: ${command.usage}`, command.about, ...rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`)].join('\n')
}

/** Prints `<name>: <message> (--help lists the options)` on stderr and exits with status 2. */
export function badCommandLine(command: { name: string }, message: string): never {
  process.stderr.write(`${command.name}: ${message} (--help lists the options)\n`)
  process.exit(2)
}

function convert(command: { name: string }, source: string, flag: Exclude<Flag, { type: 'boolean' }>, text: string): unknown {
  if (flag.type === 'string') {
    if (flag.choices && !flag.choices.includes(text)) badCommandLine(command, `${source} must be one of ${flag.choices.join(', ')}, not '${text}'`)
    return text
  }
  const min = flag.type === 'number' ? (flag.min ?? 0) : 0
  const numbers = (flag.type === 'numbers' ? text.split(',') : [text]).map((part) => (part.trim() === '' ? NaN : Number(part)))
  if (numbers.some((n) => !Number.isFinite(n) || n < min)) {
    const wanted = flag.type === 'numbers' ? 'a comma-separated list of non-negative numbers' : min === 0 ? 'a non-negative number' : `a number of at least ${min}`
    badCommandLine(command, `${source} must be ${wanted}, not '${text}'`)
  }
  return flag.type === 'number' ? numbers[0] : numbers
}

/**
 * Parses `argv` (default: this process's arguments) against the command's flags. `--help` prints `usage(command)`
 * and exits 0; bad input exits 2 through badCommandLine. Returns the flags' values and the positional arguments.
 */
export function parseCommandLine<F extends Flags>(
  command: Command<F>,
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): { values: FlagValues<F>; positionals: string[] } {
  const options = Object.fromEntries(Object.entries(command.flags).map(([name, flag]) => [name, { type: flag.type === 'boolean' ? ('boolean' as const) : ('string' as const) }]))
  // Not strict: parseArgs's own errors are stack traces with long messages; each check is made below instead.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true })
  if (tokens.some((token) => token.kind === 'option' && token.name === 'help')) {
    process.stdout.write(`${usage(command)}\n`)
    process.exit(0)
  }
  const given = new Map<string, string>()
  const positionals: string[] = []
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value)
    if (token.kind !== 'option') continue
    const flag = Object.hasOwn(command.flags, token.name) ? command.flags[token.name]! : undefined
    if (flag === undefined) badCommandLine(command, `unknown option '${token.rawName}'`)
    if (flag.type === 'boolean') {
      if (token.value !== undefined) badCommandLine(command, `${token.rawName} takes no value`)
      given.set(token.name, '')
      continue
    }
    if (token.value === undefined) badCommandLine(command, `${token.rawName} needs a value`)
    if (!token.inlineValue && token.value.startsWith('-')) {
      badCommandLine(command, `${token.rawName} needs a value: give one that starts with '-' as ${token.rawName}=${token.value}`)
    }
    given.set(token.name, token.value)
  }
  const wanted = command.positionals ?? []
  if (positionals.length > wanted.length) badCommandLine(command, `unexpected argument '${positionals[wanted.length]}'`)
  if (positionals.length < wanted.length) badCommandLine(command, `${wanted[positionals.length]} is missing`)
  const values: Record<string, unknown> = {}
  for (const [name, flag] of Object.entries(command.flags)) {
    if (flag.type === 'boolean') {
      values[name] = given.has(name)
      continue
    }
    const variable = command.env ? envName(command.env, name) : undefined
    const text = given.get(name) ?? (variable === undefined ? undefined : env[variable])
    const source = given.has(name) ? `--${name}` : variable!
    values[name] = text === undefined ? (flag.type === 'numbers' && flag.default ? [...flag.default] : flag.default) : convert(command, source, flag, text)
  }
  return { values: values as FlagValues<F>, positionals }
}

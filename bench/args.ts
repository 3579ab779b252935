/**
 * What the bench scripts' command lines share. Each script declares its flags on a commander Command made here (the
 * flags' types come from their parsers and defaults, through @commander-js/extra-typings); --help prints the usage
 * from those declarations.
 *
 *   --help                  the usage on stdout, exit 0
 *   bad input               one line on stderr, `<script>: <what is wrong> (--help lists the options)`, exit 2:
 *                           an unknown flag, a flag without its value, a value for a flag that takes none, a number
 *                           that is not one or is below its minimum, a value outside the flag's choices, a missing or
 *                           an extra positional argument, a bad value in an environment variable read by Option.env()
 *
 * A flag that takes a value takes the next argument whatever it starts with (`--broker-args "--fsync"`).
 */
import { Command, InvalidArgumentError, type CommandUnknownOpts } from '@commander-js/extra-typings'

/** Exit status for a command line the script cannot run with, as for a shell builtin's misuse. */
const USAGE_EXIT_CODE = 2

/**
 * A command named `name` (what error lines start with, e.g. 'cluster'), whose --help starts with `usage` (how it is
 * run, e.g. 'node dist/bench/cluster.js [options]') and `about` (what it does). Errors are one line and exit 2.
 */
export function benchCommand(name: string, usage: string, about: string) {
  return new Command(name)
    .description(about)
    .configureHelp({ commandUsage: () => usage })
    .configureOutput({
      // A suggestion ("Did you mean --repeat?") comes on a line of its own; it joins the error's line.
      outputError: (message, write) => write(`${name}: ${message.replace(/^error: /, '').trim().replaceAll('\n', ' ')} (--help lists the options)\n`),
    })
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : USAGE_EXIT_CODE))
}

/** Refuses the command line after parsing, for checks a flag's parser cannot make: one line, exit 2. */
export function badCommandLine(command: CommandUnknownOpts, message: string): never {
  command.error(message, { exitCode: USAGE_EXIT_CODE })
}

function numberOrNaN(text: string): number {
  return text.trim() === '' ? NaN : Number(text)
}

/** A flag's parser for a finite number of at least `min` (0 by default); fractions are allowed. */
export function number(min = 0) {
  return (text: string): number => {
    const value = numberOrNaN(text)
    if (!Number.isFinite(value) || value < min) throw new InvalidArgumentError(min === 0 ? 'Expected a non-negative number.' : `Expected a number of at least ${min}.`)
    return value
  }
}

/** A flag's parser for a comma-separated list of non-negative numbers, e.g. `64,256,1024`. */
export function numbers(text: string): number[] {
  const values = text.split(',').map(numberOrNaN)
  if (values.some((value) => !Number.isFinite(value) || value < 0)) throw new InvalidArgumentError('Expected a comma-separated list of non-negative numbers.')
  return values
}

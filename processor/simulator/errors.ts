/**
 * The simulator's own errors, each with a stable code and a one-line message meant for the user (the CLI prints the
 * message as is). Kafka's errors reach the user inside `BROKER_REFUSED`, by their Kafka name.
 */
export const SimulatorErrorCode = {
  /** An option or flag value out of its range, or options that contradict each other. */
  invalidOption: 'INVALID_OPTION',
  /** A replay file cannot be opened or read, or no replay file holds a readable row. */
  unreadableFile: 'UNREADABLE_FILE',
  /** A replay file whose sensor is neither given nor recognisable from its name, or a sensor with no known unit. */
  unknownSensor: 'UNKNOWN_SENSOR',
  /** The cluster refused readings (e.g. INVALID_TIMESTAMP) or could not be reached; the run stopped. The message says which. */
  brokerRefused: 'BROKER_REFUSED',
} as const

export type SimulatorErrorCode = (typeof SimulatorErrorCode)[keyof typeof SimulatorErrorCode]

export class SimulatorError extends Error {
  constructor(
    readonly code: SimulatorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'SimulatorError'
  }
}

/** Node's error codes for a file that cannot be read, in words; other codes are shown as they are. */
const FILE_ERROR_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent of it is not a directory',
  EACCES: 'permission denied',
}

/**
 * Why a file cannot be read, in a few words: `error` is Node's error from an open, stat, access or read (its `code`
 * picks the words; an unknown code is shown as is, an error without one by its message). The CLI words its own
 * files' errors with it too, so every `cannot read <path>: <reason>` reads the same.
 */
export function fileErrorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  return (code === undefined ? undefined : FILE_ERROR_REASONS[code]) ?? code ?? (error as Error).message
}

/** UNREADABLE_FILE: `cannot read <file>: <reason>` (fileErrorReason), with Node's error as the cause. */
export function unreadableFile(file: string, error: unknown): SimulatorError {
  return new SimulatorError(SimulatorErrorCode.unreadableFile, `cannot read ${file}: ${fileErrorReason(error)}`, { cause: error })
}

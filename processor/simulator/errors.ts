/**
 * The simulator's own errors, each with a stable code and a one-line message meant for the user (the CLI prints the
 * message as is). Kafka's errors reach the user inside `BROKER_REFUSED`, by their Kafka name.
 */
export const SimulatorErrorCode = {
  /** An option or flag value out of its range, or options that contradict each other. */
  invalidOption: 'INVALID_OPTION',
  /** A replay file cannot be opened or read. */
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

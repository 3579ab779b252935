/**
 * kafkajs does not catch every error of its own: when its consumer's crash handling fails (it awaits a disconnect
 * that can throw, consumer/index.js onCrash, called without a catch from its fetch loop and its restart timer), the
 * rejection reaches the process unhandled, and Node ends a process on an unhandled rejection. A pipeline's runner
 * notices a consumer so stopped and starts a new one (runner.ts, restartConsumer); this handler keeps the process
 * alive meanwhile.
 */

/** Whether `reason` is an error of kafkajs (its classes are all named KafkaJS...). */
function isKafkaJsError(reason: unknown): reason is Error {
  return reason instanceof Error && reason.name.startsWith('KafkaJS')
}

/** The handlers logClientRejections installed, told apart from an application's own. */
const installed = new Set<NodeJS.UnhandledRejectionListener>()

/**
 * Installs a process-wide `unhandledRejection` handler for as long as a pipeline runs: a kafkajs error that no one
 * handled is logged on one line through `log` ("kafkajs failed outside the pipeline's reach: <name>: <message>") and
 * the process goes on; any other unhandled rejection is thrown again as an uncaught exception, as Node does without
 * a handler (a bug is not hidden), unless the application has an `unhandledRejection` handler of its own: that one
 * then decides, as it would without this one. Returns the function that removes the handler.
 */
export function logClientRejections(log: (line: string) => void): () => void {
  const handler: NodeJS.UnhandledRejectionListener = (reason) => {
    if (!isKafkaJsError(reason)) {
      if (process.listeners('unhandledRejection').some((listener) => !installed.has(listener))) return
      throw reason
    }
    log(`kafkajs failed outside the pipeline's reach: ${reason.name}: ${reason.message}`)
  }
  installed.add(handler)
  process.on('unhandledRejection', handler)
  return () => {
    process.off('unhandledRejection', handler)
    installed.delete(handler)
  }
}

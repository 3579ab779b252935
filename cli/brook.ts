#!/usr/bin/env node
/**
 * `brook`: the one composition root, a commander program whose commands call into broker/, client/ and processor/.
 * Each command group lives in its own module (start.ts, topics.ts, groups.ts, transactions.ts, console.ts, simulate.ts,
 * process.ts, demo.ts, cluster.ts, dev.ts); commands parse and check their arguments (parsers.ts), call one module, and print (format.ts). Errors
 * reach the user as one line on stderr (`brook: ...`) with exit code 1, never as a stack trace.
 */
import { Command } from '@commander-js/extra-typings'
import { addStartCommand } from './start.js'
import { addTopicsCommands } from './topics.js'
import { addGroupsCommands } from './groups.js'
import { addTransactionsCommands } from './transactions.js'
import { addConsumeCommand, addProduceCommand } from './console.js'
import { addSimulateCommand } from './simulate.js'
import { addProcessCommand } from './process.js'
import { addDemoCommand } from './demo.js'
import { addClusterCommands } from './cluster.js'
import { addDevCommand } from './dev.js'

const program = new Command()
  .name('brook')
  .description('A Kafka you can npm install: a Kafka-wire-compatible broker on LevelDB that runs as one node or as a replicated cluster, with commands to manage its topics, consumer groups and transactions, to produce and consume records, and to simulate sensors and run stream-processing pipelines')
  .version('0.1.0')
  .configureOutput({ outputError: (message, write) => write(message.replace(/^error: /, 'brook: ')) })

addStartCommand(program)
addTopicsCommands(program)
addGroupsCommands(program)
addTransactionsCommands(program)
addProduceCommand(program)
addConsumeCommand(program)
addSimulateCommand(program)
addProcessCommand(program)
addDemoCommand(program)
addClusterCommands(program)
addDevCommand(program)

/** How long a failed command's process may take to end by itself (output flushed, sockets closed) before it is ended. */
const EXIT_AFTER_FAILURE_MS = 2000

program.parseAsync().catch((error: Error) => {
  console.error(`brook: ${error.message}`)
  process.exitCode = 1
  // A command that failed is done: clients still retrying a cluster that went away must not keep the process alive.
  setTimeout(() => process.exit(1), EXIT_AFTER_FAILURE_MS).unref()
})

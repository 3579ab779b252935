#!/usr/bin/env node
/**
 * `brook`: the one composition root, a commander program whose commands call into broker/, client/ and processor/.
 * Each command group lives in its own module (start.ts, topics.ts, groups.ts, transactions.ts, console.ts, simulate.ts,
 * process.ts, demo.ts, cluster.ts, dev.ts); commands parse and check their arguments (parsers.ts), call one module, and print (format.ts). Errors
 * reach the user as one line on stderr (`brook: ...`) with exit code 1, never as a stack trace.
 */
import { Command, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { endSoon } from './interrupt.js'
import { BROOK_VERSION } from '../client/version.js'

type AddCommands = (program: CommandUnknownOpts) => void

/**
 * Each command's module, loaded only when that command runs: the processor's commands load kafkajs and the whole
 * processor, which made every `brook` process start several times slower than the command it ran needed. Help, the
 * version and an unknown command (whose error suggests the nearest) load them all, in this order.
 */
const COMMANDS: Record<string, () => Promise<AddCommands>> = {
  start: async () => (await import('./start.js')).addStartCommand,
  topics: async () => (await import('./topics.js')).addTopicsCommands,
  groups: async () => (await import('./groups.js')).addGroupsCommands,
  transactions: async () => (await import('./transactions.js')).addTransactionsCommands,
  produce: async () => (await import('./console.js')).addProduceCommand,
  consume: async () => (await import('./console.js')).addConsumeCommand,
  simulate: async () => (await import('./simulate.js')).addSimulateCommand,
  process: async () => (await import('./process.js')).addProcessCommand,
  demo: async () => (await import('./demo.js')).addDemoCommand,
  cluster: async () => (await import('./cluster.js')).addClusterCommands,
  dev: async () => (await import('./dev.js')).addDevCommand,
}

const program = new Command()
  .name('brook')
  .description('A Kafka you can npm install: a Kafka-wire-compatible broker on LevelDB that runs as one node or as a replicated cluster, with commands to manage its topics, consumer groups and transactions, to produce and consume records, and to simulate sensors and run stream-processing pipelines')
  .version(BROOK_VERSION)
  // One line, as every error of the program: commander's "(Did you mean ...?)" hint joins the error's line.
  .configureOutput({ outputError: (message, write) => write(message.replace(/^error: /, 'brook: ').replace(/\n\(Did you mean (.*)\?\)\n$/, ' (did you mean $1?)\n')) })

const named = process.argv[2]
const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS)
for (const add of await Promise.all(wanted.map((name) => COMMANDS[name]!()))) add(program)

program.parseAsync().catch((error: Error) => {
  console.error(`brook: ${error.message}`)
  process.exitCode = 1
  // A command that failed is done: clients still retrying a cluster that went away must not keep the process alive.
  endSoon(1)
})

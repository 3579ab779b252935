/**
 * Preloaded (`node --import`) into a `brook` command to learn which modules it loads: every URL the module loader
 * loads (ES modules, and the entry of each CommonJS package imported from one, `kafkajs` among them) is appended, one
 * a line, to the file named by BROOK_LOADED_MODULES. The same file, registered as the loader's hooks, runs again on
 * the hooks' thread, where it records; on the main thread it only registers itself.
 */
import { isMainThread } from 'node:worker_threads'
import { register } from 'node:module'
import { appendFileSync } from 'node:fs'

let log = ''

if (isMainThread) register(import.meta.url, import.meta.url, { data: { log: process.env.BROOK_LOADED_MODULES } })

/** The hooks' start: `data` is what `register` passed. */
export function initialize(data) {
  log = data.log
}

/** Records the URL, then loads it as the loader would. */
export async function load(url, context, nextLoad) {
  appendFileSync(log, `${url}\n`)
  return nextLoad(url, context)
}

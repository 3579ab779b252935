/**
 * The user's own modules that commands load: a pipeline (`brook process ./my-pipeline.ts`, whose default export is a
 * topology) and kafkajs client settings (`--kafka-config file.json`, or a module whose default export is them).
 *
 * JavaScript modules are imported as they are. TypeScript ones (.ts, .mts, .cts) are compiled on the fly by tsx's
 * loader hooks (tsx 4, esbuild underneath), since Node 20 runs no TypeScript by itself; tsx strips types without
 * checking them (run `tsc` for that). A pipeline imports `brook` as any module imports a package: Node looks for it from the pipeline's folder up
 * (a project with brook among its dependencies, or a brook checkout, which resolves its own name), so the pipeline
 * runs on the same brook whether `brook process` or the user's own program starts it.
 *
 * Every failure is one line that names the file: a missing file, a module that does not compile or throws while it
 * loads, a pipeline that loads as CommonJS, a default export of the wrong kind. A syntax error says where (`file:line:column`): esbuild's report does for
 * TypeScript, and `node --check` for JavaScript, whose SyntaxError from import() does not.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, type Stats } from 'node:fs'
import { dirname, extname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { KafkaConfig, RetryOptions } from 'kafkajs'
// The topology's module, not the processor's index: a pipeline refused before its import (no such file, a syntax
// error) loads neither the processor's runtime nor kafkajs.
import { isTopology, type Topology } from '../processor/topology/topology.js'
import { cannotRead } from './files.js'

const TYPESCRIPT_EXTENSIONS: ReadonlySet<string> = new Set(['.ts', '.mts', '.cts'])

/** kafkajs client settings other than `brokers`, which comes from --bootstrap-server. */
export type KafkaSettings = Omit<KafkaConfig, 'brokers'>

type ValueType = 'string' | 'number' | 'boolean' | 'object' | 'function'

/**
 * What one kafkajs setting may be. A number that is a time (`ms`) or a proportion (`factor`) must be finite and 0 or
 * more, and a `count` a whole number too: kafkajs takes a negative requestTimeout or retry time without a word, and
 * then fails every request at once or retries with no wait. An object whose names kafkajs documents has them in
 * `fields`, checked the same way; ssl and sasl have none here, as Node's TLS and kafkajs's SASL code check what they hold.
 */
interface SettingRule {
  readonly types: readonly ValueType[]
  readonly unit?: 'ms' | 'count' | 'factor'
  readonly fields?: Readonly<Record<string, SettingRule>>
}

/** kafkajs's RetryOptions (retry/defaults.js, and consumer/index.js for restartOnFailure). */
const RETRY_SETTINGS: Readonly<Record<keyof RetryOptions, SettingRule>> = {
  maxRetryTime: { types: ['number'], unit: 'ms' },
  initialRetryTime: { types: ['number'], unit: 'ms' },
  factor: { types: ['number'], unit: 'factor' },
  multiplier: { types: ['number'], unit: 'factor' },
  retries: { types: ['number'], unit: 'count' },
  restartOnFailure: { types: ['function'] },
}

/**
 * The settings kafkajs 2.2 takes besides `brokers` (KafkaConfig), with the types each may have: anything else is a
 * misspelling, refused, and a value of another type is refused too, as kafkajs would fail on it later with Node's
 * words (`The "string" argument must be of type string ... Received type number (5)` for a numeric clientId).
 */
const KAFKA_SETTINGS: Readonly<Record<keyof KafkaSettings, SettingRule>> = {
  clientId: { types: ['string'] },
  ssl: { types: ['boolean', 'object'] },
  sasl: { types: ['object'] },
  connectionTimeout: { types: ['number'], unit: 'ms' },
  authenticationTimeout: { types: ['number'], unit: 'ms' },
  reauthenticationThreshold: { types: ['number'], unit: 'ms' },
  requestTimeout: { types: ['number'], unit: 'ms' },
  enforceRequestTimeout: { types: ['boolean'] },
  retry: { types: ['object'], fields: RETRY_SETTINGS },
  socketFactory: { types: ['function'] },
  logLevel: { types: ['number'] },
  logCreator: { types: ['function'] },
}

const NUMBER_WORDING: Readonly<Record<NonNullable<SettingRule['unit']>, string>> = {
  ms: 'a number of ms, 0 or more',
  count: 'a whole number, 0 or more',
  factor: 'a number, 0 or more',
}

function shown(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  // JSON.stringify writes NaN and Infinity, which only a module can give, as null.
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value)
}

/**
 * Checks `settings` against `rules`, naming a nested setting by its path (`retry.retries`) and, for an unknown one,
 * what its object takes instead (`owner`: `kafkajs`, `kafkajs's retry`).
 */
function checkSettings(file: string, settings: object, rules: Readonly<Record<string, SettingRule>>, path: string, owner: string): void {
  for (const [key, value] of Object.entries(settings)) {
    const name = `${path}${key}`
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined
    if (rule === undefined) throw new Error(`${file}: unknown setting '${name}' (${owner} takes ${Object.keys(rules).join(', ')})`)
    // undefined is left to kafkajs's default, as a module may set a setting from an environment variable that is unset.
    if (value === undefined) continue
    if (value === null || Array.isArray(value) || !(rule.types as readonly string[]).includes(typeof value)) {
      throw new Error(`${file}: ${name} must be ${rule.types.map((type) => (type === 'object' ? 'an object' : `a ${type}`)).join(' or ')}, not ${shown(value)}`)
    }
    if (rule.unit !== undefined && typeof value === 'number' && (!Number.isFinite(value) || value < 0 || (rule.unit === 'count' && !Number.isInteger(value)))) {
      throw new Error(`${file}: ${name} must be ${NUMBER_WORDING[rule.unit]}, not ${shown(value)}`)
    }
    if (rule.fields !== undefined && typeof value === 'object') checkSettings(file, value, rule.fields, `${name}.`, `kafkajs's ${name}`)
  }
}

/** A one-line account of an error thrown while a module compiled or ran (esbuild's reports span several lines). */
function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ')
}

/**
 * `message` with the files esbuild names given their real names. tsx hands esbuild a `.mts` or `.cts` file under a
 * `.ts` name and a `.mjs` file under a `.js` name (so that esbuild picks the loader), and esbuild's report then names
 * `bad.ts:1:18` for `bad.mts`. A renamed name is the loaded module's own, or else the variant that exists where the
 * name given does not.
 */
function realFileNames(message: string, loaded: string): string {
  return message.replace(/(\/[^\s:]+)\.(ts|js)(?=:\d+:\d+)/g, (name: string, stem: string, extension: string) => {
    const variants = extension === 'ts' ? [`${stem}.mts`, `${stem}.cts`] : [`${stem}.mjs`]
    return variants.find((variant) => variant === loaded) ?? (existsSync(name) ? name : (variants.find((variant) => existsSync(variant)) ?? name))
  })
}

/**
 * Whether Node (and tsx, which follows it) loads a TypeScript file as CommonJS: `.cts` always, `.ts` when the nearest
 * package.json does not say `"type": "module"`. tsx then also compiles the ES modules that file requires into
 * CommonJS, brook's own among them, and that changes how they import CommonJS packages (a default import of a
 * package compiled with `__esModule` gets its `default` property instead of the package). Pipelines that load as ES
 * modules (`.mts`, or a package of type module, as a brook checkout is) have no such step.
 */
function loadsAsCommonJs(path: string): boolean {
  const extension = extname(path)
  if (extension === '.cts') return true
  if (extension !== '.ts') return false
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown }).type !== 'module'
    } catch {
      if (dirname(dir) === dir) return true
    }
  }
}

let typeScriptRegistered: Promise<void> | null = null

/**
 * Registers tsx's loader hooks in this process, once, and only when a TypeScript file is loaded (so that other
 * commands do not pay for esbuild). Registered globally rather than through tsx's scoped `tsImport`, which loads a
 * file tree under a namespace of its own: there the pipeline's `import ... from 'brook'` would be a second instance
 * of brook's modules, whose errors (a RecordError for a value that is not JSON) the runtime's own instance would not
 * recognise.
 */
function registerTypeScript(): Promise<void> {
  // Both module systems: a .ts file outside a package of type module loads as CommonJS, through the require hooks.
  typeScriptRegistered ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(([esm, cjs]) => {
    esm.register()
    cjs.register()
  })
  return typeScriptRegistered
}

/**
 * Imports a module by path (relative to the working directory); throws a one-line Error naming `file`. A `pipeline`
 * imports brook, which fails to load when the pipeline loads as CommonJS (loadsAsCommonJs): tsx then compiles brook's
 * ES modules into CommonJS too, and the first default import of a CommonJS package among them throws (`Cannot
 * destructure property 'DDSketch'...`). That error names one of brook's dependencies and would only mislead, so a
 * TypeScript pipeline that fails to load as CommonJS is told that it must load as an ES module, with the hint. (Were
 * brook to load there, it would be a second instance of brook beside the runtime's; see registerTypeScript.)
 */
export async function importUserModule(file: string, { pipeline = false }: { pipeline?: boolean } = {}): Promise<Record<string, unknown>> {
  const path = resolve(file)
  let stats: Stats
  try {
    stats = statSync(path)
  } catch (error) {
    throw cannotRead(file, error)
  }
  if (stats.isDirectory()) throw cannotRead(file, { code: 'EISDIR' })
  if (!stats.isFile()) throw new Error(`cannot read ${file}: not a file`)
  const url = pathToFileURL(path).href
  const typeScript = TYPESCRIPT_EXTENSIONS.has(extname(path))
  // A top-level await of a promise that nothing will settle leaves the import pending while the event loop empties,
  // and Node would then exit 0 without a word, as if the command had done its work.
  const neverLoaded = (): void => {
    process.exitCode = 1
    process.stderr.write(`brook: ${file}: never finished loading: a top-level await waits for a promise that nothing settles\n`)
  }
  process.once('beforeExit', neverLoaded)
  try {
    if (typeScript) await registerTypeScript()
    return await importHoldingWarnings(url)
  } catch (error) {
    // Node's "Require stack: - file ..." after a CommonJS resolution error names only files the message names already.
    const message = realFileNames(oneLine(error), path).replace(/\s*Require stack:.*$/, '')
    // A JavaScript module's SyntaxError from import() says what but not where (esbuild's report on TypeScript does).
    const where = error instanceof SyntaxError && !typeScript ? syntaxErrorAt(path) : null
    // A syntax error, unless it is import or export in a file loaded as CommonJS, is no matter of module systems.
    const syntax = error instanceof SyntaxError || /^Transform failed/.test(message)
    const moduleSyntax = /import statement outside a module|Unexpected token 'export'/.test(message)
    const commonJs = typeScript ? loadsAsCommonJs(path) && (!syntax || moduleSyntax) : moduleSyntax
    const brookMissing = /^Cannot find (module|package) 'brook[/']/.test(message)
    // A .cts file loads as CommonJS whatever its package.json says.
    const cts = extname(path) === '.cts'
    let hint = ''
    if (brookMissing) {
      const asCommonJs = commonJs ? `; it also loads as CommonJS, since no package.json above it says "type": "module": name it ${typeScript ? '.mts' : '.mjs'}, or add "type": "module"` : ''
      hint = ` (install brook in the pipeline's project, npm install brook, or keep the pipeline in a brook checkout${asCommonJs})`
    }
    else if (cts && commonJs) hint = ` (${file} loads as CommonJS, as every .cts file does; name it .mts)`
    else if (commonJs) hint = ` (${file} loads as CommonJS, since no package.json above it says "type": "module"; name it ${typeScript ? '.mts' : '.mjs'}, or add "type": "module")`
    const what = pipeline && typeScript && commonJs && !brookMissing ? 'a pipeline must load as an ES module' : message
    throw new Error(`${file}${where === null ? '' : `:${where}`}: ${what}${hint}`)
  } finally {
    process.off('beforeExit', neverLoaded)
  }
}

/**
 * `import(url)`, with the process warnings emitted meanwhile held back and passed on after it, except Node's advice on
 * loading an ES module as CommonJS (`To load an ES module, set "type": "module"...`): the failure that follows it gets
 * a one-line hint of its own, and the error stays one line.
 */
async function importHoldingWarnings(url: string): Promise<Record<string, unknown>> {
  const listeners = process.listeners('warning')
  const held: Error[] = []
  const hold = (warning: Error): void => void held.push(warning)
  process.removeAllListeners('warning')
  process.on('warning', hold)
  try {
    return (await import(url)) as Record<string, unknown>
  } finally {
    process.off('warning', hold)
    for (const listener of listeners) process.on('warning', listener)
    for (const warning of held) {
      if (!warning.message.startsWith('To load an ES module')) for (const listener of listeners) listener(warning)
    }
  }
}

/**
 * Where the syntax error of the JavaScript file at `path` is, as `line` or `line:column` (1-based), from what
 * `node --check` prints (`<path>:<line>`, the source line, a caret under the column); null when it finds none.
 */
function syntaxErrorAt(path: string): string | null {
  // A Node start takes a fraction of a second, and many seconds on a machine loaded with other work (10 s was seen to
  // run out): the error waits for its line rather than lose it.
  const check = spawnSync(process.execPath, ['--no-warnings', '--check', path], { encoding: 'utf8', timeout: 60_000 })
  const lines = (check.stderr ?? '').split('\n')
  const at = lines.findIndex((text) => text.startsWith(`${path}:`))
  const line = at >= 0 ? /:(\d+)$/.exec(lines[at]!)?.[1] : undefined
  if (line === undefined) return null
  const column = (lines[at + 2] ?? '').indexOf('^')
  return column >= 0 ? `${line}:${column + 1}` : line
}

/**
 * A module's default export. A TypeScript or JavaScript file that Node loads as CommonJS (no `"type": "module"` in
 * its package.json) and was written with `export default` has it one level down: Node's ESM view of a CommonJS
 * module is `{ default: module.exports }`, and the compiled `export default` is `module.exports.default`.
 */
function defaultExport(module: Record<string, unknown>): unknown {
  const value = module.default
  if (typeof value === 'object' && value !== null && (value as { __esModule?: unknown }).__esModule === true) return (value as { default?: unknown }).default
  return value
}

function kind(value: unknown): string {
  if (value === undefined) return 'missing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object that is not a topology' : `a ${typeof value}`
}

/** Loads a pipeline module; its default export must be a topology (`export default builder.build()`). */
export async function loadTopology(file: string): Promise<Topology> {
  const topology = defaultExport(await importUserModule(file, { pipeline: true }))
  if (!isTopology(topology)) throw new Error(`${file} does not export a topology: its default export is ${kind(topology)} (a pipeline module ends with \`export default builder.build()\`)`)
  return topology
}

/**
 * Reads `--kafka-config`: a JSON file, or a JavaScript or TypeScript module whose default export is the settings (so
 * that secrets can come from the environment and certificates from files). Keys are kafkajs's KafkaConfig names, and
 * retry's its RetryOptions names; `brokers`, unknown keys, values of another type and negative times and counts are
 * refused.
 */
export async function loadKafkaSettings(file: string): Promise<KafkaSettings> {
  let settings: unknown
  if (extname(file) === '.json') {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw cannotRead(file, error)
    }
    try {
      settings = JSON.parse(text)
    } catch (error) {
      throw new Error(`${file} is not valid JSON: ${(error as Error).message}`)
    }
  } else {
    settings = defaultExport(await importUserModule(file))
  }
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) throw new Error(`${file} must hold an object of kafkajs client settings (ssl, sasl, clientId...)`)
  if (Object.hasOwn(settings, 'brokers')) throw new Error(`${file}: brokers is not a setting here; --bootstrap-server gives them`)
  checkSettings(file, settings, KAFKA_SETTINGS, '', 'kafkajs')
  return settings as KafkaSettings
}

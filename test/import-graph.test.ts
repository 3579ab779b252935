/**
 * The layering of README.md's Architecture section, checked on the sources: every relative import (type-only, re-exports and dynamic
 * imports included) is an arrow between two files, and
 *   - arrows between folders point one way: protocol -> nothing; storage -> protocol; client -> protocol;
 *     broker -> storage, protocol, client; processor -> none of Brook's folders (it runs on kafkajs against any
 *     Kafka); cli -> broker, client, protocol, processor; bench -> anything;
 *   - nothing under broker/ imports broker/broker.ts, the node's composition root (handlers see services);
 *   - no file reaches itself again (no import cycle), in any folder.
 * A failure lists every offending arrow or cycle.
 */
import { describe, expect, it } from 'vitest'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import ts from 'typescript'

const ROOT = resolve(import.meta.dirname, '..')

const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  protocol: [],
  storage: ['protocol'],
  client: ['protocol'],
  broker: ['storage', 'protocol', 'client'],
  processor: [],
  cli: ['broker', 'client', 'protocol', 'processor'],
  bench: ['cli', 'broker', 'client', 'storage', 'protocol', 'processor'],
}

const COMPOSITION_ROOT = 'broker/broker.ts'

function sourcesUnder(folder: string): string[] {
  const dir = join(ROOT, folder)
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(folder, name))
}

/** Repository-relative paths of the project files `file` imports. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true)
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => relative(ROOT, resolve(ROOT, dirname(file), name)).replace(/\.js$/, '.ts'))
}

const folderOf = (file: string): string => file.split('/')[0]!

const files = Object.keys(MAY_IMPORT).flatMap(sourcesUnder)
const graph = new Map(files.map((file) => [file, importsOf(file)]))

/** Tarjan's strongly connected components; every component of more than one file (or a self-import) is a cycle. */
function cycles(): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  let next = 0
  const visit = (file: string): void => {
    index.set(file, next)
    low.set(file, next)
    next++
    stack.push(file)
    onStack.add(file)
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue
      if (!index.has(target)) {
        visit(target)
        low.set(file, Math.min(low.get(file)!, low.get(target)!))
      } else if (onStack.has(target)) low.set(file, Math.min(low.get(file)!, index.get(target)!))
    }
    if (low.get(file) !== index.get(file)) return
    const component: string[] = []
    let member: string
    do {
      member = stack.pop()!
      onStack.delete(member)
      component.push(member)
    } while (member !== file)
    if (component.length > 1 || graph.get(file)!.includes(file)) found.push(component.sort())
  }
  for (const file of graph.keys()) if (!index.has(file)) visit(file)
  return found
}

describe('the import graph', () => {
  it('finds the sources of every layer', () => {
    for (const folder of ['protocol', 'storage', 'client', 'broker', 'processor', 'cli', 'bench']) {
      expect(files.some((file) => folderOf(file) === folder), folder).toBe(true)
    }
  })

  it('has arrows between folders only where the layering allows them', () => {
    const forbidden = files.flatMap((file) =>
      graph
        .get(file)!
        .filter((target) => folderOf(target) !== folderOf(file) && !MAY_IMPORT[folderOf(file)]!.includes(folderOf(target)))
        .map((target) => `${file} -> ${target}`),
    )
    expect(forbidden).toEqual([])
  })

  it('has every relative import resolve to a file', () => {
    const missing = files.flatMap((file) => graph.get(file)!.filter((target) => !existsSync(join(ROOT, target))).map((target) => `${file} -> ${target}`))
    expect(missing).toEqual([])
  })

  it('keeps the node\'s composition root out of broker/: handlers and the rest see services', () => {
    const importers = files.filter((file) => folderOf(file) === 'broker' && graph.get(file)!.includes(COMPOSITION_ROOT))
    expect(importers).toEqual([])
  })

  it('has no import cycle, type-only imports included', () => {
    expect(cycles()).toEqual([])
  })
})

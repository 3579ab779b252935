/**
 * What `npm install brook` gets: the files `npm pack` puts in the package (package.json's `files`). They hold what
 * `brook` and the library need to run (the bin, every `exports` target with its types, every module those import,
 * the licence) and none of the repository's tests, fixtures or benchmarks.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, normalize, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

const REPO = resolve(import.meta.dirname, '..')

interface PackageJson {
  bin: Record<string, string>
  exports: Record<string, string | { types: string; default: string }>
}

/** The paths `npm pack` would ship, relative to the package root; prepare (tsc) is skipped, dist/ is built already. */
function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 120_000 })
  const [pack] = JSON.parse(out) as { files: { path: string }[] }[]
  return pack!.files.map((f) => f.path)
}

/** The relative specifiers a built module imports (static, re-exported or dynamic). */
function relativeImports(source: string): string[] {
  const found = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!).filter((specifier) => !specifier.includes('${'))
  return [...new Set(found)]
}

describe('the npm package', () => {
  const files = packedFiles()
  const shipped = new Set(files)
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as PackageJson

  it('holds the bin, every exports target with its types, the README and the licence', () => {
    const targets = [
      ...Object.values(pkg.bin),
      ...Object.values(pkg.exports).flatMap((target) => (typeof target === 'string' ? [target] : [target.types, target.default])),
      'README.md',
      'LICENSE',
    ].map((path) => normalize(path))
    expect(targets.filter((path) => !shipped.has(path))).toEqual([])
  })

  it('holds every module that a shipped module imports', () => {
    const missing = files
      .filter((path) => path.endsWith('.js'))
      .flatMap((path) => relativeImports(readFileSync(join(REPO, path), 'utf8')).map((specifier) => ({ path, target: normalize(join(dirname(path), specifier)) })))
      .filter(({ target }) => !shipped.has(target))
    expect(missing).toEqual([])
  })

  it('holds no tests, fixtures, benchmarks, TypeScript sources or source maps', () => {
    const stray = files.filter((path) => /^(test|bench|dist\/test|dist\/bench)\//.test(path) || (path.endsWith('.ts') && !path.endsWith('.d.ts')) || path.endsWith('.map'))
    expect(stray).toEqual([])
  })

  it('has type declarations that check in a project that type-checks its libraries too (skipLibCheck false)', () => {
    // A user's project importing every exports target, strict and with the libraries' declarations checked: the
    // package's declarations must not reach declarations of a dependency that fail to check (those of
    // @datadog/sketches-js name protobufjs, which it does not install).
    const project = mkdtempSync(join(tmpdir(), 'brook-types-'))
    try {
      const targets = Object.values(pkg.exports).flatMap((target) => (typeof target === 'string' || !target.default.endsWith('.js') ? [] : [target.default]))
      writeFileSync(join(project, 'use.ts'), [...new Set(targets)].map((target, i) => `import * as m${i} from ${JSON.stringify(join(REPO, target))}\nexport { m${i} }\n`).join(''))
      writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, skipLibCheck: false, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'], typeRoots: [join(REPO, 'node_modules/@types')] },
        files: ['use.ts'],
      }))
      const tsc = join(REPO, 'node_modules/typescript/bin/tsc')
      const result = (() => {
        try {
          return { code: 0, out: execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', timeout: 120_000 }) }
        } catch (error) {
          return { code: (error as { status: number }).status, out: String((error as { stdout: string }).stdout) }
        }
      })()
      expect(result).toEqual({ code: 0, out: '' })
    } finally {
      rmSync(project, { recursive: true, force: true })
    }
  }, 150_000)
})

/** What the report says about the machine: the figures only mean something beside it. */
import { cpus, loadavg, release, totalmem } from 'node:os'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

export interface MachineInfo {
  cpuModel: string
  cores: number
  cpuMHz: number
  memoryGB: number
  kernel: string
  node: string
  packages: Record<string, string>
  /** 1, 5 and 15 minute load averages when the run started (`uptime`). */
  loadAtStart: number[]
}

const require = createRequire(import.meta.url)

function packageVersion(name: string, from?: string): string {
  try {
    const main = require.resolve(name, from ? { paths: [from] } : undefined)
    let dir = dirname(main)
    // Walk up from the entry point to the package's own package.json (its exports may not list it).
    while (!dir.endsWith(`node_modules/${name}`) && dir !== dirname(dir)) dir = dirname(dir)
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** Virtual machines often report a speed of 0 to os.cpus(); /proc/cpuinfo still knows. */
function cpuinfoMHz(): number {
  try {
    const match = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    return match ? Math.round(Number(match[1])) : 0
  } catch {
    return 0
  }
}

export function machineInfo(): MachineInfo {
  const cpu = cpus()
  let levelDir: string | undefined
  try {
    levelDir = dirname(require.resolve('level'))
  } catch {
    levelDir = undefined
  }
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    cpuMHz: cpu[0]?.speed || cpuinfoMHz(),
    memoryGB: Math.round(totalmem() / 1e9),
    kernel: release(),
    node: process.version,
    packages: {
      level: packageVersion('level'),
      'classic-level': levelDir ? packageVersion('classic-level', levelDir) : 'unknown',
    },
    loadAtStart: loadavg(),
  }
}

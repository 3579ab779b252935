/**
 * A small tmpfs to fill up: a real full disk for the storage-failure tests. Mounting needs root (CI runs as root);
 * where it is refused, `mountTmpfs` returns the reason and the suite skips with it printed.
 *
 *   const tmpfs = mountTmpfs(16 * MiB)            // in a beforeAll; afterAll: tmpfs.unmount()
 *   tmpfs.fill({ leaveBytes: 3 * MiB })           // a filler file takes all but that
 *   tmpfs.free()                                  // space comes back
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const MiB = 1024 * 1024

export interface Tmpfs {
  readonly dir: string
  /** Bytes free now. */
  available(): number
  /** Writes a filler file that leaves about `leaveBytes` free (0: the file system is full). */
  fill(options: { leaveBytes: number }): void
  /** Removes the filler file. */
  free(): void
  /** Unmounts and removes the mount point (lazily, so an open file does not keep it). */
  unmount(): void
}

/** Mounts a tmpfs of `sizeBytes`, or returns why it could not. */
export function mountTmpfs(sizeBytes: number): Tmpfs | { skipReason: string } {
  const dir = mkdtempSync(join(tmpdir(), 'brook-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe', timeout: 30_000 })
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim()
    return { skipReason: `cannot mount a tmpfs (needs root): ${stderr || (error as Error).message}` }
  }
  const filler = join(dir, 'filler')
  const available = (): number => {
    const stats = statfsSync(dir)
    return stats.bavail * stats.bsize
  }
  return {
    dir,
    available,
    fill({ leaveBytes }) {
      // To fill it completely, ask for more than is free: the write stops at ENOSPC with the file as large as it got.
      const bytes = leaveBytes > 0 ? available() - leaveBytes : available() + MiB
      try {
        writeFileSync(filler, Buffer.alloc(Math.max(0, bytes)))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC' || leaveBytes > 0) throw error
      }
    },
    free() {
      rmSync(filler, { force: true })
    },
    unmount() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 30_000 })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A node process's wall clock, stepped while it runs: Debian's libfaketime (`apt-get install faketime`, which .ci/run
 * installs) preloaded with only the wall clock faked (DONT_FAKE_MONOTONIC), its offset read from a file at every call
 * (FAKETIME_NO_CACHE), so that writing the file steps the clock as NTP or a laptop's resume would.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'

/** Why a test of clock steps cannot run here (no libfaketime), or null. */
export function faketimeMissing(): string | null {
  return existsSync(LIBFAKETIME) ? null : `no ${LIBFAKETIME} (apt-get install faketime)`
}

export interface FakeClock {
  /** The environment a node process is started with (startBroker's `env`). */
  readonly env: Readonly<Record<string, string>>
  /** Steps the clock to `offset` from the real one, in libfaketime's syntax: '+0', '+1h', '-30m'. */
  step(offset: string): void
  /** Removes the offset's file. */
  remove(): void
}

/** A clock at the real time ('+0') until stepped. */
export function fakeClock(): FakeClock {
  const dir = mkdtempSync(join(tmpdir(), 'brook-clock-'))
  const offsetFile = join(dir, 'offset')
  const step = (offset: string): void => writeFileSync(offsetFile, `${offset}\n`)
  step('+0')
  return {
    env: { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: offsetFile, FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1' },
    step,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

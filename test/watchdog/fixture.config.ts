import { defineConfig } from 'vitest/config'

/** The watchdog's own test runs fixture files with it (BROOK_WATCHDOG_FIXTURES: their names); see watchdog.test.ts. */
export default defineConfig({
  test: {
    include: (process.env.BROOK_WATCHDOG_FIXTURES ?? 'blocked,quick').split(',').map((name) => `test/watchdog/fixtures/${name}.ts`),
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['test/watchdog/global.ts'],
    setupFiles: ['test/watchdog/worker.ts'],
  },
})

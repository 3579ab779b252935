import { defineConfig } from 'vitest/config'

/** The watchdog's own test runs the fixture files with it; see watchdog.test.ts. */
export default defineConfig({
  test: {
    include: ['test/watchdog/fixtures/*.ts'],
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['test/watchdog/global.ts'],
    setupFiles: ['test/watchdog/worker.ts'],
  },
})

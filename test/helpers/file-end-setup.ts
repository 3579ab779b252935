/**
 * Runs in each test worker before every file (vitest `setupFiles`, isolated or not): as the file ends, after its own
 * hooks, kills the child processes and removes the directories still registered with ./file-end.ts.
 */
import { afterAll } from 'vitest'
import { endFile } from './file-end.js'

afterAll(endFile)

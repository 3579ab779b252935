/**
 * logClientRejections (runtime/client-rejections.ts) in a process of its own, on the built processor: a kafkajs error
 * that reaches the process unhandled (as one from kafkajs's consumer crash handling does) is logged on one line and
 * the process goes on; any other unhandled rejection still ends the process with its stack, as Node does.
 */
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { expect, test } from 'vitest'

const PROCESSOR = resolve(import.meta.dirname, '../../dist/processor/index.js')

/** Runs `body` as an ES module after installing the handler (logging to stderr); prints "still running" 200 ms later. */
function runWithHandler(body: string): { status: number | null; stdout: string; stderr: string } {
  const script = `
    import kafkajs from 'kafkajs'
    import { logClientRejections } from ${JSON.stringify(PROCESSOR)}
    logClientRejections((line) => process.stderr.write(line + '\\n'))
    ${body}
    setTimeout(() => process.stdout.write('still running\\n'), 200)
  `
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: resolve(import.meta.dirname, '../..'), encoding: 'utf8', timeout: 30_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

test('a kafkajs error rejected unhandled is logged on one line and the process goes on', () => {
  const result = runWithHandler(`Promise.reject(new kafkajs.KafkaJSProtocolError({ message: 'This is not the correct coordinator for this group', type: 'NOT_COORDINATOR', code: 16, retriable: true }))`)
  expect(result.stderr).toBe("kafkajs failed outside the pipeline's reach: KafkaJSProtocolError: This is not the correct coordinator for this group\n")
  expect(result.stdout).toBe('still running\n')
  expect(result.status).toBe(0)
})

test('any other error rejected unhandled still ends the process with its stack', () => {
  const result = runWithHandler(`Promise.reject(new TypeError('a bug'))`)
  expect(result.stdout).toBe('')
  expect(result.stderr).toMatch(/TypeError: a bug\n\s+at /)
  expect(result.status).not.toBe(0)
})

test("an application's own unhandledRejection handler decides about its other rejections", () => {
  // An application that logs unhandled rejections and goes on keeps doing so with the handler installed beside its
  // own: before, the handler threw the rejection again and ended the process although the application handled it.
  const result = runWithHandler(`
    process.on('unhandledRejection', (reason) => process.stderr.write('application: ' + reason.message + '\\n'))
    Promise.reject(new TypeError('a bug the application logs'))
  `)
  expect(result.stderr).toBe('application: a bug the application logs\n')
  expect(result.stdout).toBe('still running\n')
  expect(result.status).toBe(0)
})

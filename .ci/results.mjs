// What a vitest JSON report (`--reporter=json`) says, for .ci/run.
//
//   node .ci/results.mjs lost <report>                 the test files whose worker went away before they ended, one a line
//   node .ci/results.mjs failed <report>               how many tests failed, and files that failed with no failed test
//   node .ci/results.mjs summary <report> [<rerun>]    "N passed, N failed[, N skipped]"; with <rerun>, the files it ran
//                                                      count from it instead of from <report>
//
// A file whose worker process went away (vitest says only "Worker exited unexpectedly") keeps the tests it had not
// reported as "pending" (vitest's JSON maps a test still running or queued to pending; a skipped one is "skipped").
import { readFileSync } from 'node:fs'

const [command, reportPath, rerunPath] = process.argv.slice(2)
const read = (path) => JSON.parse(readFileSync(path, 'utf8'))
const report = read(reportPath)

/** Counts of one file's tests: a test still "pending" in a finished report never ended, and counts as failed. */
function counts(file) {
  const by = (status) => file.assertionResults.filter((test) => test.status === status).length
  return { passed: by('passed'), failed: by('failed') + by('pending'), skipped: by('skipped') + by('todo') }
}

if (command === 'lost') {
  for (const file of report.testResults) if (file.assertionResults.some((test) => test.status === 'pending')) console.log(file.name)
} else if (command === 'failed') {
  let failed = 0
  for (const file of report.testResults) {
    const failedTests = file.assertionResults.filter((test) => test.status === 'failed').length
    failed += failedTests
    // A file that failed with no test failed: it did not load, or a hook failed (its tests then show as skipped).
    if (file.status === 'failed' && failedTests === 0) failed++
  }
  console.log(failed)
} else if (command === 'summary') {
  const rerun = rerunPath ? read(rerunPath) : null
  const rerunFiles = new Set(rerun ? rerun.testResults.map((file) => file.name) : [])
  const files = [...report.testResults.filter((file) => !rerunFiles.has(file.name)), ...(rerun ? rerun.testResults : [])]
  // A file that failed with no failed test did not load (no tests in the report), or a hook of it failed, and vitest
  // then reports the tests it kept from running as skipped: those count as failed (at least one for the file).
  const total = { passed: 0, failed: 0, skipped: 0 }
  for (const file of files) {
    const c = counts(file)
    total.passed += c.passed
    if (file.status === 'failed' && c.failed === 0) {
      total.failed += Math.max(1, c.skipped)
    } else {
      total.failed += c.failed
      total.skipped += c.skipped
    }
  }
  console.log(`${total.passed} passed, ${total.failed} failed` + (total.skipped ? `, ${total.skipped} skipped` : ''))
} else {
  console.error(`usage: node .ci/results.mjs lost|failed|summary <report> [<rerun>]`)
  process.exit(2)
}

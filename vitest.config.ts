import { configDefaults, defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The files and folders whose files start real broker processes and clusters or run long, slowest first: they start before the quick unit
 * files, so the workers end together instead of one running a long cluster file alone at the end. (Vitest orders
 * by the durations it cached on an earlier run; a clean clone has none, and falls back to file size.)
 */
const SLOW_FIRST = [
  // Long files outside the folders below, which would otherwise start last and run alone at the end (a clean-clone run
  // of 849 s started the cleaner's 76 s at 675 s and the first retention pass's 31 s wait at 818 s; the next, of 904 s,
  // started the Raft simulation's 28 s at 865 s).
  'test/broker/log-cleaner-passes.test.ts',
  'test/broker/retention-first-pass.test.ts',
  'test/broker/produce-validation.test.ts',
  'test/broker/backpressure.test.ts',
  'test/cluster/raft/simulation.test.ts',
  'test/cluster/replication/simulation.test.ts',
  'test/watchdog/',
  'test/cluster/node/',
  'test/cli/',
  'test/broker/group/',
  'test/processor/',
  'test/clients/',
  'test/bench/',
]

class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files)
    const rank = (file: TestSpecification): number => {
      const index = SLOW_FIRST.findIndex((prefix) => file.moduleId.includes(`/${prefix}`))
      return index < 0 ? SLOW_FIRST.length : index
    }
    return sorted.map((file, order) => ({ file, order })).sort((a, b) => rank(a.file) - rank(b.file) || a.order - b.order).map(({ file }) => file)
  }
}

/**
 * The folders whose files share worker processes (`isolate: false`, below), each checked green run that way on its
 * own; test/processor/ is a project of its own (below). The rest keep a worker process per file: not yet run without
 * isolation.
 */
const SHARED = ['protocol', 'storage', 'client', 'clients', 'cluster/raft', 'cluster/metadata', 'cluster/controller', 'cluster/replication', 'broker', 'cli']
  .map((folder) => `test/${folder}/**/*.test.ts`)
  .concat('test/cluster/*.test.ts')

/**
 * Files of test/processor/ that keep a worker of their own: they check state a file before them in the same worker
 * would have set: kafkajs's Broker.fetch not yet wrapped by processor/runtime/aborted-transactions.ts, and kafkajs's
 * consumer guarded by the runner's own call (processor/runtime/fetch-guards.ts), which another file's pipeline would
 * have installed already.
 */
const PROCESSOR_ISOLATED = ['test/processor/aborted-transactions.test.ts', 'test/processor/pipeline.test.ts']

/** What the projects below share. */
const PROJECT = {
  // Integration tests start real broker processes and real clients; give them room on a 2-core machine.
  testTimeout: 120_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
  // Each file's worker says what it runs, for the watchdog (test/watchdog/worker.ts); the processes and directories
  // a file's helpers registered with test/helpers/file-end.ts are ended as the file ends, isolated or not.
  setupFiles: ['test/watchdog/worker.ts', 'test/helpers/file-end-setup.ts'],
}

export default defineConfig({
  test: {
    // Four workers on two cores: many files spend most of their time waiting on a fault (a session timeout, a
    // retention check, a restart), which left the cores idle part of the time with fewer. Clean-clone runs: 911 s with
    // two workers; 755-759 s, later (with more tests) 818-889 s, with three, the cores idle 29% of the time in the
    // 824 s one; 729 s with four, idle 19%, all green (and 896 s green with other work beside it). Earlier, before the
    // tests that failed under the extra load were fixed, three workers failed three runs of five. Later, with more
    // tests: 976 s with three workers, 897-912 s with four (idle 22-32% while test/processor/'s files, which run
    // together and mostly wait, ran), 835 s and 889 s with five, the second failing one connection's 1 s timeout to
    // a node just started: four stay.
    maxWorkers: 4,
    sequence: { sequencer: SlowFirstSequencer },
    // A file whose worker is blocked (no timeout can fire in it) is named and killed after ten minutes, so the run
    // ends failed instead of waiting for it forever (test/watchdog/). Set here only: vitest runs the root's
    // globalSetup whatever projects run, and a project's too.
    globalSetup: ['test/watchdog/global.ts'],
    // kafkajs 2.2.4 can leave the rejection of the LeaveGroup a stopping consumer sends unhandled, when the group's
    // coordinator moved meanwhile (a leader killed or cut off): the consumer has stopped either way. Only that error
    // is let through; every other unhandled error still fails the run.
    onUnhandledError: (error) =>
      !(error.message === 'This is not the correct coordinator for this group' && /leaveGroup/i.test(error.stack ?? '')),
    projects: [
      // Without isolation a worker runs file after file, and evaluates vitest's runtime and the modules the files
      // import (helpers, sources, kafkajs) once instead of once per file: about 1 CPU-second a file, on a run that
      // keeps both cores busy. Each folder run alone, shared then isolated, on the 2-core machine with other work
      // beside it (load average 5-9, at times 15-24), CPU-seconds (wall seconds): protocol, storage and client 113
      // against 135 (87 against 94); processor 344 against 414 (266 against 286); broker 195 against 253 (121 against
      // 139); cli 572 against 654 (320 against 366); clients, cluster/controller, cluster/replication and the files of
      // test/cluster/ itself 80 against 98 (56 against 61, load average 1.5). A whole clean-clone run with the folders
      // before clients: 910 s against 985-1,025 s isolated (cores idle 14% in both). Files that start processes gain
      // least: their CPU is mostly the brokers' and clients' own.
      // A pipeline run in process patches kafkajs for the whole process (processor/runtime/fetch-guards.ts wraps its
      // consumer's fetch, aborted-transactions.ts its Broker.fetch, codecs.ts adds compression codecs): the files of
      // test/processor/ share workers among themselves only (a worker runs the files of one project), so the files
      // that test the broker through kafkajs keep the kafkajs users have.
      { test: { ...PROJECT, name: 'processor', include: ['test/processor/**/*.test.ts'], exclude: [...configDefaults.exclude, ...PROCESSOR_ISOLATED], isolate: false } },
      { test: { ...PROJECT, name: 'shared', include: SHARED, isolate: false } },
      { test: { ...PROJECT, name: 'processor-isolated', include: PROCESSOR_ISOLATED } },
      { test: { ...PROJECT, name: 'isolated', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...SHARED, 'test/processor/**'] } },
    ],
  },
})

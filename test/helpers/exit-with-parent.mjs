/**
 * Preloaded (`node --import`) into the broker processes tests start (broker.ts): the broker kills itself once the
 * process that started it is gone. A test's own cleanup (its kill, the file end's, the process's exit) does not run
 * when its worker is killed (vitest interrupted with Ctrl-C, the watchdog), and brokers would outlive the run, holding
 * their ports and data directories. The parent's death shows as a new parent pid (the orphan is adopted by init or a
 * subreaper); checked once a second, unref'd, so it never keeps a broker alive nor changes what it does meanwhile.
 */
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL')
}, 1000).unref()

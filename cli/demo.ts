/**
 * `brook demo` (what `npm start` runs): the whole pipeline on one machine, with a live view.
 *
 *   cluster (`brook dev`, demo-cluster.ts) ◀── simulator: a fleet of devices ── readings ───┐
 *        ▲                                                                                 │
 *        └── readings-stats-1m, readings-avg-5m, readings-alerts, readings-late ◀── pipeline (iot)
 *                                                                                          │
 *   view (dashboard.ts) ◀── the pipeline's outputs and counters, the simulator's progress, ┘
 *                           the group's lag (kafkajs admin)
 *
 * The simulator and the pipeline run in this process, through kafkajs like any client, so another terminal sees the
 * same topics (`brook consume readings-alerts`, kcat). The cluster has three nodes by default, and every topic the
 * simulator and the pipeline create gets its default replication factor, min(3, nodes): the demo goes on when a node
 * dies. Ctrl-C stops everything in order: the pipeline first (a final commit, then it leaves its group), then the
 * simulator (its batch in flight acknowledged), then the cluster (SIGTERM, a clean shutdown of every node). The data
 * stays in the data directory, so the next run resumes from it.
 */
import { join } from 'node:path'
import type { Admin } from 'kafkajs'
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import type { IotPipelineOptions, RunningPipeline } from '../processor/index.js'
// The simulator's flag table, not its index; the processor, the simulator's runs, kafkajs and the view are loaded by
// the action, the runtime and kafkajs once everything is checked, so that --help and a refused flag load none of them.
import { COMMON_FLAGS, FLEET_FLAGS, fleetOptionsFromFlags, resolveFleetOptions, type FlagValues, type FleetOptions } from '../processor/simulator/options.js'
import { startDemoCluster, type DemoCluster } from './demo-cluster.js'
import { MAX_BASE_PORT, MAX_NODES } from './dev.js'
import { onStopSignal } from './interrupt.js'
import { addIotOptions, iotOptionsFrom } from './iot-options.js'
import { integer } from './parsers.js'
import { count, formatMetrics, many } from './pipeline-format.js'
import { simulatorOption } from './simulate.js'

const APPLICATION_ID = 'brook-demo'

/** The fleet's flags the demo takes (no count or duration: it runs until Ctrl-C), and the defaults it sets itself. */
const DEMO_FLEET_KEYS = ['devices', 'rate', 'sensors', 'seed', 'lateFraction', 'outOfOrderFraction', 'gapFraction', 'faultRate', 'latenessMs', 'partitions'] as const
const DEMO_FLEET: Pick<FleetOptions, 'rate' | 'partitions'> = { rate: 1000, partitions: 4 }
/** The wait before the simulator starts again after losing its cluster connection (ms). */
const FLEET_RESTART_DELAY_MS = 2000
/** Runs in a row that send nothing before the demo stops instead of starting the simulator again (one minute). */
const FLEET_IDLE_RESTARTS = 30

/**
 * The pipeline's settings in the demo: the built-in topics, named here because the view follows them. The thresholds
 * are the built-in pipeline's bands per simulated sensor (DEFAULT_THRESHOLDS).
 */
const DEMO_PIPELINE = {
  inputTopic: 'readings',
  statsTopic: 'readings-stats-1m',
  averagesTopic: 'readings-avg-5m',
  alertsTopic: 'readings-alerts',
  lateTopic: 'readings-late',
} as const satisfies IotPipelineOptions

/** Committed lag of `groupId` on `topic`: records between each partition's committed offset and its end. */
async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [committed, ends] = await Promise.all([admin.fetchOffsets({ groupId, topics: [topic] }), admin.fetchTopicOffsets(topic)])
  const offsets = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
  let lag = 0
  for (const end of ends) {
    const position = offsets.get(end.partition) ?? -1
    lag += Number(end.high) - (position >= 0 ? position : Number(end.low))
  }
  return lag
}

/** What the simulator's runs sent in all (the demo starts it again when it loses its cluster connection). */
interface FleetTotals {
  /** Readings acknowledged, over every run. */
  sent: number
  /** Readings held back (out of order or late) and faulted, over the runs that ended with a summary. */
  heldBack: number
  faulted: number
  /** Runs after the first. */
  restarts: number
}

/**
 * The simulator's part of the summary. Which readings were late is the pipeline's to say (its windows and grace
 * decide, and its line counts what went to the late-records topic); the fleet's own `late` label measures its
 * lateness setting, two minutes by default, which a short run never reaches. So this line counts the readings the
 * fleet held back, out of order or late, without calling them late.
 */
function fleetSummaryLine(totals: FleetTotals | null): string {
  if (totals === null) return 'simulator: did not run'
  const restarts = totals.restarts > 0 ? `; started again ${many(totals.restarts, 'time')} after losing its cluster connection` : ''
  return `simulator: ${many(totals.sent, 'reading')} sent (${count(totals.heldBack)} sent after newer ones, ${count(totals.faulted)} faulted${restarts})`
}

/** How long the demo waits for its pipeline and simulator to stop once its cluster has exited by itself (ms). */
const CLUSTER_GONE_WAIT_MS = 3000

export function addDemoCommand(program: CommandUnknownOpts): void {
  const command = program
    .command('demo')
    .description('run the whole pipeline with a live view: a cluster (brook dev), a simulated fleet of devices, and the built-in iot pipeline, until Ctrl-C')
    .option('--nodes <n>', 'nodes of the cluster (default: 3)', integer('--nodes', 1, MAX_NODES))
    .option('--base-port <port>', 'client port of node 1; node N listens on base-port + N - 1, its controller listener 100 above (0: ports free now) (default: 9092)', integer('--base-port', 0, MAX_BASE_PORT))
    .option('--data-dir <dir>', 'where the cluster (<dir>/node-N) and the pipeline keep their data, kept between runs (default: .brook)')
  for (const def of [...COMMON_FLAGS, ...FLEET_FLAGS].filter((d) => (DEMO_FLEET_KEYS as readonly string[]).includes(d.key))) {
    command.addOption(simulatorOption(def, DEMO_FLEET[def.key as keyof typeof DEMO_FLEET] ?? def.defaultValue))
  }
  addIotOptions(command)
  command.action(async (options) => {
    const { iotPipeline } = await import('../processor/iot.js')
    const { planTopology } = await import('../processor/topology/plan.js')
    const nodes = options.nodes ?? 3
    const basePort = options.basePort ?? 9092
    const dataDir = options.dataDir ?? '.brook'
    const pipelineOptions: IotPipelineOptions = { ...DEMO_PIPELINE, ...iotOptionsFrom(command).options }
    // Everything is checked before anything starts: the pipeline's settings by building it, the fleet's by resolving them.
    const topology = iotPipeline(pipelineOptions)
    // Planning it finds a topic both read and written (`--stats-topic readings`) before a cluster is started for it.
    planTopology(topology, { applicationId: APPLICATION_ID })
    const fleetOptions: FleetOptions = { ...DEMO_FLEET, ...fleetOptionsFromFlags(command.opts() as FlagValues, { bootstrapServers: [] }), topic: pipelineOptions.inputTopic }
    resolveFleetOptions({ ...fleetOptions, bootstrapServers: [`127.0.0.1:${basePort}`] })
    const { logClientRejections, runPipeline } = await import('../processor/index.js')
    const { simulateFleet } = await import('../processor/simulator/index.js')
    const { Kafka, logLevel } = (await import('kafkajs')).default
    const { Dashboard, canRedraw } = await import('./dashboard.js')

    let cluster: DemoCluster | null = null
    let admin: Admin | null = null
    let pipeline: RunningPipeline | null = null
    let fleetRun: Promise<FleetTotals | null> | null = null
    /** The cluster ended by itself: nothing can commit or send any more, so nothing waits long for that. */
    let clusterGone = false
    /**
     * The view's latest lag query. Once a stop is requested the view starts none (it is given this one again), and the
     * demo waits for it before it disconnects the admin: a query after the disconnect would connect the admin again,
     * and kafkajs would go on retrying it against the stopped cluster, keeping the demo running for seconds after its
     * summary.
     */
    let lagQuery: Promise<number | null> = Promise.resolve(null)
    const stopFleet = new AbortController()
    let stopReason: string | null | undefined
    let wake = (): void => {}
    const stopRequested = new Promise<void>((resolve) => (wake = resolve))
    /** null: Ctrl-C; a message: what failed. The first reason wins. */
    const requestStop = (reason: string | null): void => {
      if (stopReason !== undefined) return
      stopReason = reason
      wake()
    }
    const removeHandlers = onStopSignal({ stop: () => requestStop(null), force: () => cluster?.kill() })
    const onStdoutError = (): void => requestStop(null)
    process.stdout.on('error', onStdoutError)

    const interactive = canRedraw(process.stdout)
    const view = new Dashboard({
      title: ['Brook demo: starting'],
      statsTopic: pipelineOptions.statsTopic!,
      alertsTopic: pipelineOptions.alertsTopic!,
      metrics: () => pipeline?.metrics() ?? null,
      lag: () => {
        if (stopReason !== undefined) return lagQuery
        if (!admin || !pipeline) return Promise.resolve(null)
        lagQuery = groupLag(admin, APPLICATION_ID, pipelineOptions.inputTopic!)
        return lagQuery
      },
      interactive,
      columns: () => process.stdout.columns,
    })
    view.start()
    const removeRejectionHandler = logClientRejections((line) => view.log(`pipeline: ${line}`))
    let fleetSummary: FleetTotals | null = null
    try {
      view.setStatus(`starting the cluster (${many(nodes, 'node')})`)
      cluster = await startDemoCluster({ nodes, basePort, dataDir }, (line) => view.log(`cluster: ${line}`))
      const brokers = cluster.bootstrapServers
      void cluster.exited.then((how) => {
        if (stopReason !== undefined) return
        clusterGone = true
        view.log(`cluster: exited (${how}) while the demo ran; stopping the demo`)
        requestStop(`the cluster exited (${how})`)
      })
      admin = new Kafka({ clientId: `${APPLICATION_ID}-view`, brokers, logLevel: logLevel.NOTHING }).admin()
      await admin.connect()
      if (stopReason === undefined) {
        view.setStatus('starting the pipeline (joining its group)')
        pipeline = await runPipeline(topology, {
          applicationId: APPLICATION_ID,
          bootstrapServers: brokers,
          stateDir: join(dataDir, 'processor', APPLICATION_ID),
          partitions: fleetOptions.partitions,
          log: (line) => view.log(`pipeline: ${line}`),
        })
        pipeline.events.on('output', (event) => view.onOutput(event))
        pipeline.closed.catch((error: Error) => requestStop(`the pipeline stopped after an error: ${error.message}`))
      }
      if (stopReason === undefined) {
        const log = (line: string): void => view.log(`simulator: ${line}`)
        // kafkajs 2.2.4 ends a producer that meets a dead node before the controller has moved that node's
        // leaderships (its metadata refresh bails out on a connection error), so a run that fails while the cluster
        // is up is started again (a new client, bootstrapping from a node picked at random), from the next reading, every
        // FLEET_RESTART_DELAY_MS, until FLEET_IDLE_RESTARTS runs in a row have sent nothing. A first run that sends
        // nothing stops the demo (a cluster that refuses the readings).
        const runFleet = async (): Promise<FleetTotals | null> => {
          const totals: FleetTotals = { sent: 0, heldBack: 0, faulted: 0, restarts: 0 }
          let idleRuns = 0
          for (;;) {
            let sentInRun = 0
            try {
              const summary = await simulateFleet({
                ...fleetOptions,
                bootstrapServers: brokers,
                signal: stopFleet.signal,
                onProgress: (p) => {
                  sentInRun = p.sent
                  view.onSent(totals.sent + p.sent)
                },
                log: { info: log, warn: log },
              })
              totals.sent += summary.sent
              totals.heldBack += summary.delivery.late + summary.delivery['out-of-order']
              totals.faulted += summary.faults.spike + summary.faults.stuck + summary.faults.dropout
              return totals
            } catch (error) {
              totals.sent += sentInRun
              idleRuns = sentInRun === 0 ? idleRuns + 1 : 0
              const first = totals.restarts === 0 && sentInRun === 0
              if (first || idleRuns >= FLEET_IDLE_RESTARTS || stopReason !== undefined || clusterGone || stopFleet.signal.aborted) {
                if (stopReason === undefined) requestStop(`the simulator stopped: ${(error as Error).message}`)
                return totals.sent > 0 ? totals : null
              }
              totals.restarts++
              log(`${(error as Error).message}; starting it again`)
              await new Promise((resolve) => setTimeout(resolve, FLEET_RESTART_DELAY_MS))
            }
          }
        }
        fleetRun = runFleet()
        const resolved = resolveFleetOptions({ ...fleetOptions, bootstrapServers: brokers })
        view.setTitle([
          `Brook demo: cluster ${brokers.join(',')} (data in ${dataDir}) · simulator: ${many(resolved.devices, 'device')} x ${resolved.sensors.length} sensors, ${count(resolved.rate)} readings/s to ${pipelineOptions.inputTopic} · pipeline ${APPLICATION_ID} (${pipeline!.processingGuarantee})`,
          `Watch from another terminal: brook consume ${pipelineOptions.alertsTopic} --bootstrap-server ${brokers.join(',')}   or   kcat -b ${brokers.join(',')} -C -t ${pipelineOptions.statsTopic}`,
        ])
        view.setStatus('running; Ctrl-C stops everything')
      }
      await stopRequested
    } catch (error) {
      requestStop((error as Error).message)
    } finally {
      removeHandlers()
      // In order: the pipeline commits and leaves its group while the cluster is up; then the simulator; then the
      // cluster. Without a cluster, the pipeline's final commit and the simulator's last sends can only be retried
      // until the clients give up: they get CLUSTER_GONE_WAIT_MS, then the demo ends (the pipeline's uncommitted work
      // is what a restart redoes; nothing committed is lost).
      const settle = <T>(work: Promise<T>, fallback: T): Promise<T> =>
        clusterGone ? Promise.race([work, new Promise<T>((resolve) => setTimeout(() => resolve(fallback), CLUSTER_GONE_WAIT_MS).unref())]) : work
      if (pipeline) {
        view.setStatus(clusterGone ? 'stopping the pipeline (no cluster: its last work is not committed)' : 'stopping the pipeline (final commit, leaving its group)')
        await settle(pipeline.stop().catch(() => {}), undefined)
      }
      if (fleetRun) {
        view.setStatus('stopping the simulator')
        stopFleet.abort()
        fleetSummary = await settle(fleetRun, null)
      }
      await settle(lagQuery.catch(() => null), null)
      await admin?.disconnect().catch(() => {})
      if (cluster) {
        view.setStatus('stopping the cluster')
        await cluster.stop()
      }
      view.setStatus(stopReason === null ? 'stopped' : 'stopped after an error')
      view.stop()
      removeRejectionHandler()
      process.stdout.off('error', onStdoutError)
    }
    if (pipeline) process.stdout.write(`pipeline ${APPLICATION_ID}: ${formatMetrics(pipeline.metrics(), { lateTopic: pipelineOptions.lateTopic })}\n`)
    process.stdout.write(`${fleetRun && !fleetSummary && clusterGone ? 'simulator: stopped without its summary (no cluster)' : fleetSummaryLine(fleetSummary)}\n`)
    if (cluster) process.stdout.write(clusterGone ? `cluster: exited by itself; the data stays in ${dataDir}\n` : `cluster: stopped; the data stays in ${dataDir} for the next run\n`)
    if (stopReason) throw new Error(stopReason)
  })
}

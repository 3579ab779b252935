/**
 * `brook demo` (what `npm start` runs): the whole pipeline on one machine, with a live view.
 *
 *   broker (child process, demo-cluster.ts) ◀── simulator: a fleet of devices ── readings ──┐
 *        ▲                                                                                 │
 *        └── readings-stats-1m, readings-avg-5m, readings-alerts, readings-late ◀── pipeline (iot)
 *                                                                                          │
 *   view (dashboard.ts) ◀── the pipeline's outputs and counters, the simulator's progress, ┘
 *                           the group's lag (kafkajs admin)
 *
 * The simulator and the pipeline run in this process, through kafkajs like any client, so another terminal sees the
 * same topics (`brook consume readings-alerts`, kcat). Ctrl-C stops everything in order: the pipeline first (a final
 * commit, then it leaves its group), then the simulator (its batch in flight acknowledged), then the broker
 * (SIGTERM, a clean shutdown). The data stays in the data directory, so the next run resumes from it.
 */
import { join } from 'node:path'
import kafkajs, { type Admin } from 'kafkajs'
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { iotPipeline, runPipeline, type IotPipelineOptions, type RunningPipeline } from '../processor/index.js'
import { COMMON_FLAGS, FLEET_FLAGS, fleetOptionsFromFlags, resolveFleetOptions, simulateFleet, type FlagValues, type FleetOptions, type FleetSummary } from '../processor/simulator/index.js'
import { Dashboard } from './dashboard.js'
import { startDemoCluster, type DemoCluster } from './demo-cluster.js'
import { onStopSignal } from './interrupt.js'
import { addIotOptions, iotOptionsFrom } from './iot-options.js'
import { integer } from './parsers.js'
import { count, formatMetrics, many } from './pipeline-format.js'
import { simulatorOption } from './simulate.js'

const { Kafka, logLevel } = kafkajs

const APPLICATION_ID = 'brook-demo'

/** The fleet's flags the demo takes (no count or duration: it runs until Ctrl-C), and the defaults it sets itself. */
const DEMO_FLEET_KEYS = ['devices', 'rate', 'sensors', 'seed', 'lateFraction', 'outOfOrderFraction', 'gapFraction', 'faultRate', 'latenessMs', 'partitions'] as const
const DEMO_FLEET: Pick<FleetOptions, 'rate' | 'partitions'> = { rate: 1000, partitions: 4 }

/**
 * The pipeline's settings in the demo: the built-in topics, named here because the view follows them, and one
 * threshold that means something for every simulated sensor. The built-in default (a window's max above 100) would
 * alert on every pressure window (about 1013 hPa) and on nothing else; a window whose min is below 0 is a
 * temperature sensor reading its no-signal value (-127 °C, a disconnected DS18B20).
 */
const DEMO_PIPELINE = {
  inputTopic: 'readings',
  statsTopic: 'readings-stats-1m',
  averagesTopic: 'readings-avg-5m',
  alertsTopic: 'readings-alerts',
  lateTopic: 'readings-late',
  thresholdBelow: 0,
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

/**
 * The simulator's part of the summary. Which readings were late is the pipeline's to say (its windows and grace
 * decide, and its line counts what went to the late-records topic); the fleet's own `late` label measures its
 * lateness setting, two minutes by default, which a short run never reaches. So this line counts the readings the
 * fleet held back, out of order or late, without calling them late.
 */
function fleetSummaryLine(summary: FleetSummary | null): string {
  if (summary === null) return 'simulator: did not run'
  const faults = summary.faults.spike + summary.faults.stuck + summary.faults.dropout
  const heldBack = summary.delivery.late + summary.delivery['out-of-order']
  return `simulator: ${many(summary.sent, 'reading')} sent (${count(heldBack)} sent after newer ones, ${count(faults)} faulted)`
}

/** How long the demo waits for its pipeline and simulator to stop once its broker has exited by itself. */
const BROKER_GONE_WAIT_MS = 3000

export function addDemoCommand(program: CommandUnknownOpts): void {
  const command = program
    .command('demo')
    .description('run the whole pipeline with a live view: a broker, a simulated fleet of devices, and the built-in iot pipeline, until Ctrl-C')
    .option('--port <port>', 'port of the broker (0: any free port) (default: 9092)', integer('--port', 0, 65535))
    .option('--data-dir <dir>', 'where the broker and the pipeline keep their data, kept between runs (default: .brook)')
  for (const def of [...COMMON_FLAGS, ...FLEET_FLAGS].filter((d) => (DEMO_FLEET_KEYS as readonly string[]).includes(d.key))) {
    command.addOption(simulatorOption(def, DEMO_FLEET[def.key as keyof typeof DEMO_FLEET] ?? def.defaultValue))
  }
  addIotOptions(command, { thresholdBelow: String(DEMO_PIPELINE.thresholdBelow), thresholdAbove: 'none' })
  command.action(async (options) => {
    const port = options.port ?? 9092
    const dataDir = options.dataDir ?? '.brook'
    const pipelineOptions: IotPipelineOptions = { ...DEMO_PIPELINE, ...iotOptionsFrom(command).options }
    // Everything is checked before anything starts: the pipeline's settings by building it, the fleet's by resolving them.
    const topology = iotPipeline(pipelineOptions)
    const fleetOptions: FleetOptions = { ...DEMO_FLEET, ...fleetOptionsFromFlags(command.opts() as FlagValues, { bootstrapServers: [] }), topic: pipelineOptions.inputTopic }
    resolveFleetOptions({ ...fleetOptions, bootstrapServers: [`127.0.0.1:${port}`] })

    let cluster: DemoCluster | null = null
    let admin: Admin | null = null
    let pipeline: RunningPipeline | null = null
    let fleetRun: Promise<FleetSummary | null> | null = null
    /** The broker ended by itself: nothing can commit or send any more, so nothing waits long for that. */
    let brokerGone = false
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

    const interactive = process.stdout.isTTY === true
    const view = new Dashboard({
      title: ['Brook demo: starting'],
      statsTopic: pipelineOptions.statsTopic!,
      alertsTopic: pipelineOptions.alertsTopic!,
      metrics: () => pipeline?.metrics() ?? null,
      lag: async () => (admin && pipeline ? groupLag(admin, APPLICATION_ID, pipelineOptions.inputTopic!) : null),
      interactive,
      columns: () => process.stdout.columns ?? 120,
    })
    view.start()
    let fleetSummary: FleetSummary | null = null
    try {
      view.setStatus('starting the broker')
      cluster = await startDemoCluster({ port, dataDir }, (line) => view.log(`broker: ${line}`))
      const brokers = cluster.bootstrapServers
      void cluster.exited.then((how) => {
        if (stopReason !== undefined) return
        brokerGone = true
        view.log(`broker: exited (${how}) while the demo ran; stopping the demo`)
        requestStop(`the broker exited (${how})`)
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
        fleetRun = simulateFleet({ ...fleetOptions, bootstrapServers: brokers, signal: stopFleet.signal, onProgress: (p) => view.onSent(p.sent), log: { info: log, warn: log } }).catch((error: Error) => {
          requestStop(`the simulator stopped: ${error.message}`)
          return null
        })
        const resolved = resolveFleetOptions({ ...fleetOptions, bootstrapServers: brokers })
        view.setTitle([
          `Brook demo: broker ${brokers.join(',')} (data in ${dataDir}) · simulator: ${many(resolved.devices, 'device')} x ${resolved.sensors.length} sensors, ${count(resolved.rate)} readings/s to ${pipelineOptions.inputTopic} · pipeline ${APPLICATION_ID} (${pipeline!.processingGuarantee})`,
          `Watch from another terminal: brook consume ${pipelineOptions.alertsTopic} --bootstrap-server ${brokers[0]}   or   kcat -b ${brokers[0]} -C -t ${pipelineOptions.statsTopic}`,
        ])
        view.setStatus('running; Ctrl-C stops everything')
      }
      await stopRequested
    } catch (error) {
      requestStop((error as Error).message)
    } finally {
      removeHandlers()
      // In order: the pipeline commits and leaves its group while the broker is up; then the simulator; then the broker.
      // Without a broker, the pipeline's final commit and the simulator's last sends can only be retried until the
      // clients give up: they get BROKER_GONE_WAIT_MS, then the demo ends (the pipeline's uncommitted work is what a
      // restart redoes; nothing committed is lost).
      const settle = <T>(work: Promise<T>, fallback: T): Promise<T> =>
        brokerGone ? Promise.race([work, new Promise<T>((resolve) => setTimeout(() => resolve(fallback), BROKER_GONE_WAIT_MS).unref())]) : work
      if (pipeline) {
        view.setStatus(brokerGone ? 'stopping the pipeline (no broker: its last work is not committed)' : 'stopping the pipeline (final commit, leaving its group)')
        await settle(pipeline.stop().catch(() => {}), undefined)
      }
      if (fleetRun) {
        view.setStatus('stopping the simulator')
        stopFleet.abort()
        fleetSummary = await settle(fleetRun, null)
      }
      await admin?.disconnect().catch(() => {})
      if (cluster) {
        view.setStatus('stopping the broker')
        await cluster.stop()
      }
      view.setStatus(stopReason === null ? 'stopped' : 'stopped after an error')
      view.stop()
      process.stdout.off('error', onStdoutError)
    }
    if (pipeline) process.stdout.write(`pipeline ${APPLICATION_ID}: ${formatMetrics(pipeline.metrics(), { lateTopic: pipelineOptions.lateTopic })}\n`)
    process.stdout.write(`${fleetRun && !fleetSummary && brokerGone ? 'simulator: stopped without its summary (no broker)' : fleetSummaryLine(fleetSummary)}\n`)
    if (cluster) process.stdout.write(brokerGone ? `broker: exited by itself; the data stays in ${dataDir}\n` : `broker: stopped; the data stays in ${dataDir} for the next run\n`)
    if (stopReason) throw new Error(stopReason)
  })
}

/**
 * One processor instance in its own process, for the restore scenario of processor-bench.ts (which kills it with
 * SIGKILL): a pipeline that keeps one open 1-hour window per device, so its state holds exactly one key per device.
 * argv[2] is JSON { bootstrapServers, applicationId, stateDir, topic }. stdout: JSON lines (started, restored,
 * metrics every 200 ms).
 */
import { TopologyBuilder, count, eventTime, runPipeline, tumbling } from '../processor/index.js'

const config = JSON.parse(process.argv[2]!) as { bootstrapServers: string; applicationId: string; stateDir: string; topic: string }
const builder = new TopologyBuilder()
builder
  .stream(config.topic, { eventTime: eventTime.field('ts') })
  .groupByKey()
  .windowedBy(tumbling({ size: '1h', grace: 0 }))
  .aggregate({ count: count() }, { name: 'open-windows' })
  .to(`${config.topic}-counts`)
const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`)
const started = Date.now()
const pipeline = await runPipeline(builder.build(), { ...config, processingGuarantee: 'at_least_once', commitIntervalMs: 1000, log: (line) => process.stderr.write(`${line}\n`) })
pipeline.events.on('restored', (task: string, records: number, ms: number) => print({ event: 'restored', task, records, ms, sinceStartMs: Date.now() - started }))
setInterval(() => print({ event: 'metrics', sinceStartMs: Date.now() - started, ...pipeline.metrics() }), 200).unref()

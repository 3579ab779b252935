// A processor instance in its own process, so that a test can kill it with SIGKILL (kill -9) and start it again
// on the same state directory. Plain JavaScript on the built processor (dist/), as `brook process` will run it.
//
// argv[2] is JSON: { pipeline: IotPipelineOptions, run: RunOptions without log/print }.
// stdout gets one JSON line per event: started, assigned, restored, and metrics every 300 ms and once more after a
// clean stop (SIGTERM), when the final commit is counted.
import { iotPipeline, logClientRejections, runPipeline } from '../../dist/processor/index.js'

const config = JSON.parse(process.argv[2])
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)
// As `brook process` does: a kafkajs rejection no one handled (a LeaveGroup answered NOT_COORDINATOR while its
// consumer stops) is logged, not the end of the process.
logClientRejections((line) => process.stderr.write(`${line}\n`))
const pipeline = await runPipeline(iotPipeline(config.pipeline), { ...config.run, log: (line) => process.stderr.write(`${line}\n`) })
print({ event: 'started', guarantee: pipeline.processingGuarantee })
pipeline.events.on('assigned', (tasks) => print({ event: 'assigned', tasks }))
pipeline.events.on('restored', (task, records, ms) => print({ event: 'restored', task, records, ms }))
setInterval(() => print({ event: 'metrics', ...pipeline.metrics() }), 300).unref()
process.on('SIGTERM', () => {
  pipeline.stop().then(() => {
    print({ event: 'metrics', ...pipeline.metrics() })
    process.exit(0)
  }, () => process.exit(1))
})
pipeline.closed.catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})

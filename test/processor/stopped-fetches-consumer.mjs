// A kafkajs group consumer stopped while kafkajs rebuilds its fetchers (processor/runtime/fetch-guards.ts), in a
// process of its own: without the guard it would hold its event loop for good, which no timeout of the test file's
// worker could end. Plain JavaScript on the built processor (dist/), with the guard the pipeline installs.
//
// argv[2] is JSON: { brokers: string[], topic, groupId }. The consumer holds the first batch it gets in its handler.
// Once kafkajs, meanwhile, has started rebuilding its fetchers (the set of brokers changed: the test killed a node),
// and so waits for that handler, the consumer is disconnected, then the handler lets go. stdout gets one line at each
// step: `holding <topic>-<partition>`, `rebuilding`, `disconnected`; the process then exits with code 0.
import kafkajs from 'kafkajs'
import { guardFetches } from '../../dist/processor/runtime/fetch-guards.js'

const { Kafka, logLevel } = kafkajs
const { brokers, topic, groupId } = JSON.parse(process.argv[2])
const say = (line) => process.stdout.write(`${line}\n`)

guardFetches()

let holding = false
let rebuilding = () => {}
const rebuild = new Promise((resolve) => (rebuilding = resolve))
// kafkajs says when its fetch manager stops its fetchers in its debug log only: for a rebuild (or before it gives up
// after a fetcher's error, which nothing in this setting causes once the handler holds its batch).
const logCreator = () => ({ namespace, log }) => {
  if (holding && namespace === 'FetchManager' && log.message === 'Stopping fetchers...') rebuilding()
}
// Only the test's two nodes, which lead the topic's partitions: kafkajs never connects to the third one, so no
// request of the consumer waits on it once it is killed.
const kafka = new Kafka({ clientId: 'stopped-fetches', brokers, logLevel: logLevel.DEBUG, logCreator })
// Metadata every 500 ms: the consumer sees the killed node leave the cluster's brokers soon after it is fenced.
const consumer = kafka.consumer({ groupId, metadataMaxAge: 500, maxWaitTimeInMs: 250 })
let letGo = () => {}
const held = new Promise((resolve) => (letGo = resolve))
await consumer.connect()
await consumer.subscribe({ topics: [topic], fromBeginning: true })
await consumer.run({
  // A fetcher per broker works on its own batches, so the others go on fetching while one holds its batch.
  partitionsConsumedConcurrently: 2,
  eachBatch: async ({ batch }) => {
    if (holding) return
    holding = true
    say(`holding ${batch.topic}-${batch.partition}`)
    await held
  },
})
await rebuild
say('rebuilding')
// The consumer's runner is stopped at once (in this call): the rebuild, once its wait is over, starts fetchers that
// fetch through a stopped runner.
const disconnected = consumer.disconnect()
letGo()
await disconnected
say('disconnected')
process.exit(0)

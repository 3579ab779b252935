// A kafkajs 2.2.4 group member in its own process, so that a test can kill it with SIGKILL: no LeaveGroup, no
// closed connection handshake, just a member that stops heartbeating (what a crashed consumer looks like to the
// coordinator). Plain JavaScript because the test process spawns it with node directly.
//
// argv[2] is JSON: { brokers, groupId, topic, sessionTimeout, heartbeatInterval, rebalanceTimeout, clientId }.
// stdout gets one JSON line per event: {"event":"assigned","partitions":[...]} after every join, and
// {"event":"message","partition":p,"offset":"o","value":"v"} per record.
import { Kafka, logLevel } from 'kafkajs'

const options = JSON.parse(process.argv[2])
const kafka = new Kafka({ clientId: options.clientId ?? 'kafkajs-member', brokers: options.brokers, logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({
  groupId: options.groupId,
  sessionTimeout: options.sessionTimeout,
  heartbeatInterval: options.heartbeatInterval,
  rebalanceTimeout: options.rebalanceTimeout,
  maxWaitTimeInMs: 200,
})
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)

consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
  print({ event: 'assigned', memberId: payload.memberId, partitions: payload.memberAssignment[options.topic] ?? [] })
})
await consumer.connect()
await consumer.subscribe({ topics: [options.topic], fromBeginning: true })
await consumer.run({
  eachMessage: async ({ partition, message }) => {
    print({ event: 'message', partition, offset: message.offset, value: message.value?.toString() ?? null })
  },
})

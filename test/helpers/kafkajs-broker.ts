/**
 * The usual setting of a scenario suite: one broker process (started with a --config file) and a connected kafkajs
 * admin and producer. `stopKafkajsBroker` also checks that the broker logged no ERROR line, once its process is gone,
 * so that shutdown is included.
 */
import { expect } from 'vitest'
import { Kafka, logLevel, type Admin, type KafkaConfig, type Producer } from 'kafkajs'
import type { BrokerConfig } from '../../broker/config.js'
import { startConfiguredBroker } from './broker-config.js'
import type { BrokerProcess } from './broker.js'
import { loggedErrors } from './broker-log.js'

export interface KafkajsBroker {
  broker: BrokerProcess
  kafka: Kafka
  admin: Admin
  producer: Producer
}

export async function startKafkajsBroker(config: Partial<BrokerConfig>, kafkaConfig: Omit<KafkaConfig, 'brokers'>): Promise<KafkajsBroker> {
  const broker = await startConfiguredBroker(config)
  const kafka = new Kafka({ logLevel: logLevel.NOTHING, ...kafkaConfig, brokers: [broker.address] })
  const admin = kafka.admin()
  const producer = kafka.producer()
  await admin.connect()
  await producer.connect()
  return { broker, kafka, admin, producer }
}

export async function stopKafkajsBroker(setting: Partial<KafkajsBroker>): Promise<void> {
  await setting.producer?.disconnect()
  await setting.admin?.disconnect()
  if (!setting.broker) return
  await setting.broker.stop()
  setting.broker.cleanup()
  expect(loggedErrors(setting.broker)).toEqual([])
}

/**
 * A reading as it goes to Kafka: key = deviceId, value = the reading as JSON, record timestamp = ts (its event time),
 * and headers carrying the ground truth of what the simulator did to it, so that tests and a pipeline's alerts can be
 * checked against it:
 *
 *   brook-fault: spike | stuck | dropout      the value is an injected fault, not the sensor's healthy reading
 *   brook-delivery: out-of-order | late       the reading was held back: when it was sent, the fleet had already sent
 *                                             a later event time (out-of-order), more than the lateness later (late)
 */
import type { Message } from 'kafkajs'

/** One sensor reading; ts is its event time in ms since the epoch. */
export interface Reading {
  deviceId: string
  sensor: string
  value: number
  unit: string
  ts: number
}

export const FAULT_HEADER = 'brook-fault'
export const DELIVERY_HEADER = 'brook-delivery'

export const FAULT_KINDS = ['spike', 'stuck', 'dropout'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export const DELIVERY_KINDS = ['out-of-order', 'late'] as const
export type DeliveryKind = (typeof DELIVERY_KINDS)[number]

/** A reading with what was done to it (null: nothing). */
export interface LabelledReading {
  reading: Reading
  fault: FaultKind | null
  delivery: DeliveryKind | null
}

/** A reading ready to send: `dueMs` is the event time on the run's schedule at which it goes out. */
export interface Outgoing extends LabelledReading {
  dueMs: number
}

/** The Kafka message of a reading (the field order of the JSON is fixed: deviceId, sensor, value, unit, ts). */
export function toMessage(labelled: LabelledReading): Message {
  const { reading, fault, delivery } = labelled
  const value = JSON.stringify({ deviceId: reading.deviceId, sensor: reading.sensor, value: reading.value, unit: reading.unit, ts: reading.ts })
  const message: Message = { key: reading.deviceId, value, timestamp: String(reading.ts) }
  if (fault !== null || delivery !== null) {
    const headers: Record<string, string> = {}
    if (fault !== null) headers[FAULT_HEADER] = fault
    if (delivery !== null) headers[DELIVERY_HEADER] = delivery
    message.headers = headers
  }
  return message
}

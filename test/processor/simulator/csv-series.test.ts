/**
 * Reading `timestamp,value` series: NAB's timestamps and their neighbours, header handling, and which file names
 * give which sensor. (Bad rows against a broker: replay.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readSeries, type BadRow } from '../../../processor/simulator/csv-series.js'
import { parseTimestamp, planSeries, SimulatorError } from '../../../processor/simulator/index.js'

const dir = mkdtempSync(join(tmpdir(), 'brook-csv-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function read(name: string, text: string): Promise<{ rows: { ts: number; value: number; line: number }[]; bad: BadRow[] }> {
  const file = join(dir, name)
  writeFileSync(file, text)
  const bad: BadRow[] = []
  const rows = []
  for await (const row of readSeries(file, (b) => bad.push(b))) rows.push(row)
  return { rows, bad }
}

describe('parseTimestamp', () => {
  const at = Date.UTC(2013, 11, 2, 21, 15)
  it.each([
    ['2013-12-02 21:15:00', at],
    ['2013-12-02T21:15:00', at],
    ['2013-12-02 21:15', at],
    ['2013-12-02 21:15:00.000000', at],
    ['2013-12-02 21:15:00.250', at + 250],
    ['2013-12-02', Date.UTC(2013, 11, 2)],
    ['2013-12-02T21:15:00Z', at],
    ['2013-12-02T23:15:00+02:00', at],
    ['2013-12-02 16:15:00 -0500', at],
    ['2012-02-29 00:00:00', Date.UTC(2012, 1, 29)],
  ])('reads %s', (text, expected) => {
    expect(parseTimestamp(text)).toBe(expected)
  })

  it('keeps a year below 100 as written (Date.UTC would read 0099 as 1999)', () => {
    expect(new Date(parseTimestamp('0099-01-01 00:00:00')!).toISOString()).toBe('0099-01-01T00:00:00.000Z')
  })

  it.each(['2013-13-01 00:00:00', '2013-02-29 00:00:00', '2013-12-02 24:00:00', '2013-12-02 21:60:00', '21:15:00', '', 'yesterday', '1386018900000', '2013-12-02 21:15:00 +25:00'])(
    'refuses %j',
    (text) => {
      expect(parseTimestamp(text)).toBeNull()
    },
  )
})

describe('readSeries', () => {
  it('finds the columns by the header, in any order, and skips a BOM', async () => {
    const { rows, bad } = await read('swapped.csv', '\ufeffValue,Timestamp\n1.5,2013-12-02 21:15:00\n2,2013-12-02 21:20:00\n')
    expect(bad).toEqual([])
    expect(rows).toEqual([
      { ts: Date.UTC(2013, 11, 2, 21, 15), value: 1.5, line: 2 },
      { ts: Date.UTC(2013, 11, 2, 21, 20), value: 2, line: 3 },
    ])
  })

  it('reads a file without a header from its first line', async () => {
    const { rows, bad } = await read('bare.csv', '2013-12-02 21:15:00,1\n2013-12-02 21:20:00,-2.5e1\n"2013-12-02 21:25:00","3"')
    expect(bad).toEqual([])
    expect(rows.map((r) => [r.value, r.line])).toEqual([[1, 1], [-25, 2], [3, 3]])
  })

  it('reports values that are not plain decimal numbers', async () => {
    const { rows, bad } = await read('values.csv', 'timestamp,value\n2013-12-02 21:15:00,0x10\n2013-12-02 21:20:00,Infinity\n2013-12-02 21:25:00,NaN\n2013-12-02 21:30:00,.5\n')
    expect(rows.map((r) => r.value)).toEqual([0.5])
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [2, "unparsable value '0x10'"],
      [3, "unparsable value 'Infinity'"],
      [4, "unparsable value 'NaN'"],
    ])
  })

  it('reports timestamps before 1970, which no Kafka record timestamp can hold', async () => {
    const { rows, bad } = await read('old.csv', 'timestamp,value\n1969-12-31 23:59:59,1\n1970-01-01 00:30:00+01:00,2\n1970-01-01 00:00:00,3\n0099-01-01 00:00:00,4\n')
    expect(rows.map((r) => [r.ts, r.value])).toEqual([[0, 3]])
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [2, "timestamp '1969-12-31 23:59:59' is before 1970-01-01T00:00:00Z: a Kafka record timestamp cannot be negative"],
      [3, "timestamp '1970-01-01 00:30:00+01:00' is before 1970-01-01T00:00:00Z: a Kafka record timestamp cannot be negative"],
      [5, "timestamp '0099-01-01 00:00:00' is before 1970-01-01T00:00:00Z: a Kafka record timestamp cannot be negative"],
    ])
  })

  it('refuses a file it cannot read with a one-line error', async () => {
    const missing = join(dir, 'nowhere.csv')
    const error = await (async () => {
      for await (const _ of readSeries(missing, () => {})) void _
    })().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SimulatorError)
    expect((error as SimulatorError).message).toBe(`cannot read ${missing}: no such file`)
  })
})

describe('planSeries', () => {
  it('names each NAB file\'s device after the file and recognises its sensor and unit', () => {
    const files = [
      'realKnownCause/machine_temperature_system_failure.csv',
      'realTraffic/TravelTime_387.csv',
      'realTraffic/TravelTime_451.csv',
      'realTraffic/occupancy_6005.csv',
      'realTraffic/occupancy_t4013.csv',
      'realTraffic/speed_6005.csv',
      'realTraffic/speed_7578.csv',
      'realTraffic/speed_t4013.csv',
    ]
    expect(planSeries(files).map(({ deviceId, sensor, unit }) => `${deviceId} ${sensor} ${unit}`)).toEqual([
      'machine_temperature_system_failure temperature °C',
      'TravelTime_387 travel_time s',
      'TravelTime_451 travel_time s',
      'occupancy_6005 occupancy %',
      'occupancy_t4013 occupancy %',
      'speed_6005 speed mph',
      'speed_7578 speed mph',
      'speed_t4013 speed mph',
    ])
  })

  it('takes the device, sensor and unit it is given', () => {
    expect(planSeries(['a/power.csv'], { deviceId: 'meter-1', sensor: 'power', unit: 'W' })).toEqual([{ file: 'a/power.csv', deviceId: 'meter-1', sensor: 'power', unit: 'W' }])
    expect(planSeries(['a/x.csv'], { sensor: 'humidity' })[0]).toMatchObject({ deviceId: 'x', sensor: 'humidity', unit: '%' })
  })

  it('refuses a file named twice, however it is written, whose readings would all be sent twice', () => {
    expect(() => planSeries(['a/speed_1.csv', 'b/speed_2.csv', 'a/speed_1.csv'])).toThrow(new SimulatorError('INVALID_OPTION', 'a/speed_1.csv is given twice: each of its readings would be sent twice; name each file once'))
    expect(() => planSeries(['a/speed_1.csv', './a/../a/speed_1.csv'])).toThrow('./a/../a/speed_1.csv is given twice (as a/speed_1.csv)')
    // Two files of the same device and sensor (a series split by month) are two series, not one twice.
    expect(planSeries(['jan/t.csv', 'feb/t.csv'], { deviceId: 'm1', sensor: 'temperature' })).toHaveLength(2)
  })

  it('refuses a file whose sensor it cannot tell, and a sensor without a unit', () => {
    expect(() => planSeries(['data/series.csv'])).toThrow(/^cannot tell the sensor of data\/series\.csv from its name; give it with --sensor/)
    expect(() => planSeries(['data/series.csv'], { sensor: 'power' })).toThrow("no unit is known for sensor 'power'; give it with --unit")
  })
})

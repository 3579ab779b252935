/**
 * A record's group (runtime/groups.ts): the string that keys its state is the record key and its field values, and
 * remembering groups by key never hands a record the group or fields of another record's values.
 */
import { describe, expect, test } from 'vitest'
import { groupKey, Groups } from '../../processor/runtime/groups.js'

const byFields = (r: Record<string, unknown>) => r

describe('groups', () => {
  test('the group is the key and the field values, \\x1f apart; values that are not strings as JSON', () => {
    const groups = new Groups(byFields)
    expect(groups.of('device-1', { deviceId: 'device-1', sensor: 'temperature' }).group).toBe('device-1\x1fdevice-1\x1ftemperature')
    expect(groups.of('device-2', { floor: 3, ok: true, at: null }).group).toBe('device-2\x1f3\x1ftrue\x1fnull')
    expect(groups.of(null, { sensor: 'humidity' }).group).toBe('\x00\x1fhumidity')
    const keyOnly = new Groups(undefined)
    expect(keyOnly.of('device-1', undefined)).toMatchObject({ group: 'device-1', fields: { key: 'device-1' } })
    expect(keyOnly.of(null, undefined)).toMatchObject({ group: '\x00', fields: { key: null } })
  })

  test('a record without a key is never in the group of a key, the empty one included', () => {
    // Before, a null key and the empty key both made the group '' (and '\x1fhumidity' with fields): a window
    // counted the records of both, under whichever key came first.
    const keys = [null, '', '\x00', '\x00\x00', 'a']
    for (const by of [undefined, byFields]) {
      const groups = new Groups(by)
      const made = keys.map((key) => groups.of(key, by === undefined ? undefined : { sensor: 'humidity' }).group)
      expect(new Set(made).size).toBe(keys.length)
    }
    expect(keys.map(groupKey)).toEqual(['\x00', '', '\x00\x00', '\x00\x00\x00', 'a'])
  })

  test('field values that only look alike are different groups: a number and its digits, null and "null", no value and "undefined", \\x1f inside a value or key', () => {
    // Before, each pair made one group: a count per floor counted floor 1 and floor "1" together, under whichever came first.
    const cases: [string | null, Record<string, unknown>][] = [
      ['k', { floor: 1 }],
      ['k', { floor: '1' }],
      ['k', { floor: null }],
      ['k', { floor: 'null' }],
      ['k', { floor: true }],
      ['k', { floor: 'true' }],
      ['k', { floor: undefined }],
      ['k', { floor: 'undefined' }],
      ['k', { floor: { a: 1 } }],
      ['k', { floor: '{"a":1}' }],
      ['k', { floor: [1] }],
      ['k', { floor: '[1]' }],
      ['k', { floor: '"1"' }],
      ['k', { floor: '\x1e"1"' }],
      ['k', { a: 'x\x1fy', b: 'z' }],
      ['k', { a: 'x', b: 'y\x1fz' }],
      ['k\x1fx', { a: 'y', b: 'z' }],
      ['k', { a: 'x', b: 'y', c: 'z' }],
    ]
    const groups = new Groups(byFields)
    const made = cases.map(([key, fields]) => groups.of(key, fields).group)
    expect(new Set(made).size).toBe(cases.length)
    // Strings that cannot be mistaken for another value keep their group, as do values that are not strings.
    expect(groups.of('k', { sensor: 'temperature', site: 'plant-a', floor: 3, room: 'null room' }).group).toBe('k\x1ftemperature\x1fplant-a\x1f3\x1fnull room')
  })

  test('a record of a remembered key gets the group of its own field values', () => {
    const groups = new Groups(byFields)
    const first = groups.of('device-1', { deviceId: 'device-1', site: 'plant-a' })
    const again = groups.of('device-1', { deviceId: 'device-1', site: 'plant-a' })
    expect(again.group).toBe(first.group)
    expect(again.fields).toEqual({ deviceId: 'device-1', site: 'plant-a' })
    // The device moved: a new group, with the new fields; and back again.
    const moved = groups.of('device-1', { deviceId: 'device-1', site: 'plant-b' })
    expect(moved).toMatchObject({ group: 'device-1\x1fdevice-1\x1fplant-b', fields: { deviceId: 'device-1', site: 'plant-b' } })
    expect(groups.of('device-1', { deviceId: 'device-1', site: 'plant-a' }).group).toBe(first.group)
    // The same values under other names, or in another order, are other fields.
    expect(groups.of('device-1', { device: 'device-1', site: 'plant-a' }).fields).toEqual({ device: 'device-1', site: 'plant-a' })
    expect(groups.of('device-1', { site: 'plant-a', deviceId: 'device-1' }).group).toBe('device-1\x1fplant-a\x1fdevice-1')
    expect(groups.of('device-1', { deviceId: 'device-1' }).group).toBe('device-1\x1fdevice-1')
    expect(Object.is(groups.of('device-2', { level: -0 }).fields.level, -0)).toBe(true)
    expect(Object.is(groups.of('device-2', { level: 0 }).fields.level, 0)).toBe(true)
  })

  test("a key's records of several field values in turn each get their own remembered group", () => {
    const groups = new Groups(byFields)
    const sensors = ['temperature', 'humidity', 'pressure']
    const first = sensors.map((sensor) => groups.of('device-1', { deviceId: 'device-1', sensor }))
    for (let round = 0; round < 3; round++) {
      sensors.forEach((sensor, i) => expect(groups.of('device-1', { deviceId: 'device-1', sensor })).toBe(first[i]))
    }
    expect(first.map((g) => g.group)).toEqual(sensors.map((sensor) => `device-1\x1fdevice-1\x1f${sensor}`))
    // A key whose fields change at every record: its groups are right however many there are.
    for (let i = 0; i < 50; i++) expect(groups.of('device-2', { at: i }).group).toBe(`device-2\x1f${i}`)
  })

  test('an object value changed in place gives the group of its new content', () => {
    const groups = new Groups(byFields)
    const place = { site: 'plant-a' }
    expect(groups.of('device-1', { place }).group).toBe('device-1\x1f{"site":"plant-a"}')
    place.site = 'plant-b'
    expect(groups.of('device-1', { place }).group).toBe('device-1\x1f{"site":"plant-b"}')
  })

  test('keys beyond those remembered get their groups all the same', () => {
    const groups = new Groups(byFields)
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 20_000; i += 7) {
        expect(groups.of(`device-${i}`, { sensor: `s${i % 3}`, round }).group).toBe(`device-${i}\x1fs${i % 3}\x1f${round}`)
      }
    }
  })
})

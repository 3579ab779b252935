/**
 * `describeTopology`: the text form of a topology, for `brook process <pipeline> --describe` and for reading a
 * pipeline before running it. It shows each sub-topology with its source, every node in tree order, the store and
 * its changelog, and the internal topics.
 */
import { describeWindow } from '../windows/spec.js'
import { formatMs } from '../time.js'
import { planTopology, repartitionTopic, type PlanOptions } from './plan.js'
import type { EventTimeSpec, ProcessorNode, Topology } from './topology.js'
import type { DetectorSpec, ThresholdBounds } from '../anomaly.js'

function eventTimeText(spec: EventTimeSpec): string {
  switch (spec.from) {
    case 'timestamp':
      return 'record timestamp'
    case 'field':
      return `field '${spec.field}'`
    case 'function':
      return 'a function of the value'
  }
}

/** `above 100, below 0`; with bounds per group: `sensor pressure above 1050, below 975; ...; any other above 100`. */
function describeThreshold(spec: Extract<DetectorSpec, { kind: 'threshold' }>): string {
  const band = (b: ThresholdBounds): string => [b.above !== undefined ? `above ${b.above}` : '', b.below !== undefined ? `below ${b.below}` : ''].filter((t) => t !== '').join(', ') || 'none'
  if (spec.per === undefined) return band(spec)
  const per = Object.entries(spec.per.bounds).map(([name, b]) => `${spec.per!.field} ${name} ${band(b)}`)
  return [...per, `any other ${band(spec)}`].join('; ')
}

function nodeText(node: ProcessorNode, applicationId: string, lateTopic: string): string {
  switch (node.kind) {
    case 'filter':
    case 'map':
    case 'flatMap':
      return `${node.kind} ${node.name}`
    case 'keyBy':
      return `keyBy ${node.name} -> ${repartitionTopic(applicationId, node.name)}${node.partitions ? ` (${node.partitions} partitions)` : ''}`
    case 'enrich':
      return `enrich ${node.name} from ${node.table.kind === 'static' ? `static table ${node.table.name} (${node.table.entries.size} entries)` : `global table ${node.table.topic}`} (${node.join} join)`
    case 'aggregate':
    case 'reduce': {
      const what = node.kind === 'aggregate' ? `{ ${Object.entries(node.aggregations).map(([name, a]) => `${name}: ${a.kind}${a.field !== undefined ? `(${typeof a.field === 'string' ? a.field : 'fn'}${a.quantile !== undefined ? `, ${a.quantile}` : ''})` : ''}`).join(', ')} }` : 'reduce(fn)'
      const window = node.window ? `${describeWindow(node.window, formatMs)}, emit ${node.emit}, late -> ${node.lateTopic ?? lateTopic}` : 'running, emit update at commit'
      return `${node.kind} ${node.name} by key${node.fields ? ' + fields' : ''}: ${what}; ${window}`
    }
    case 'updateState':
      return `updateStateByKey ${node.name}`
    case 'detect': {
      const d = node.detector
      const how = d.kind === 'threshold' ? `threshold on ${d.field} (${describeThreshold(d)})` : d.kind === 'zscore' ? `z-score of ${d.field} >= ${d.threshold} against the previous ${d.baselineWindows} windows (min ${d.minBaselineWindows})` : `rate of change of ${d.field} > ${d.maxPerSecond}/s`
      return `detect ${node.name}: ${how}`
    }
    case 'sink':
      return `sink ${node.name} -> ${node.topic} (${node.value.name}, timestamp ${node.timestamp})`
    case 'console':
      return `console ${node.name}`
  }
}

/** Renders a topology as indented text, one line per node, children under their parent. */
export function describeTopology(topology: Topology, options: Partial<PlanOptions> = {}): string {
  const plan = planTopology(topology, { applicationId: options.applicationId ?? 'brook', ...options })
  const lines: string[] = [`Topology (application id ${plan.applicationId}; dead letters -> ${plan.deadLetterTopic})`]
  for (const table of plan.tables) lines.push(`  Global table ${table.name}${table.kind === 'topic' ? ` <- ${table.topic}` : ''}`)
  for (const sub of plan.subtopologies) {
    lines.push(`  Sub-topology ${sub.index} (${sub.name}): one task per partition of ${sub.sourceTopic}`)
    lines.push(sub.source.kind === 'source' ? `    source ${sub.sourceTopic} (${sub.source.key === 'bytes' ? 'bytes keys, ' : ''}${sub.source.value.name}, event time: ${eventTimeText(sub.eventTime)})` : `    source ${sub.sourceTopic} (repartitioned by ${sub.name}, event time: record timestamp)`)
    const walk = (nodes: readonly ProcessorNode[], depth: number): void => {
      for (const node of nodes) {
        lines.push(`${'  '.repeat(depth + 2)}-> ${nodeText(node, plan.applicationId, plan.lateTopic)}`)
        if (node.kind !== 'keyBy') walk(node.children, depth + 1)
      }
    }
    walk(sub.roots, 1)
    if (sub.changelogTopic) lines.push(`    store ${sub.storeName} (${sub.stateful.map((n) => n.name).join(', ')}) <-> changelog ${sub.changelogTopic}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * What a topology's tasks are made of, in two forms: each stateful operator's state layout in words (saved in every
 * commit's marker and checked at each task's start: task.ts checkLayouts), and the topology's fingerprint, a hash of
 * everything that decides its tasks and the topics they read and write, which the members of one consumer group
 * compare (assignor.ts):
 *
 *   per sub-topology, in task-id order:  source topic · repartition topics it writes · changelog topic
 *                                        · each stateful operator: name, state layout, window layout
 *
 * Left out, so that a rolling restart may change them as before: stateless operators (filter, map, enrich...), sinks
 * and their topics, a window's grace and a session's gap (read the same state: spec.ts stateLayout), thresholds.
 */
import { createHash } from 'node:crypto'
import { CompiledAggregations, reduction, type Accumulation } from '../aggregate/aggregations.js'
import type { Plan } from '../topology/plan.js'
import type { ProcessorNode } from '../topology/topology.js'
import { stateLayout } from '../windows/spec.js'
import { formatMs } from '../time.js'

type StatefulNode = Extract<ProcessorNode, { kind: 'aggregate' | 'reduce' | 'updateState' | 'detect' }>

/** The accumulation of an aggregate's aggregations or of a reduce's function. */
export function accumulationOf(node: Extract<ProcessorNode, { kind: 'aggregate' | 'reduce' }>): Accumulation {
  return node.kind === 'aggregate' ? new CompiledAggregations(node.aggregations) : reduction(node.reducer)
}

/**
 * What a stateful operator keeps, in words: its kind, windowed or running, and an aggregate's accumulator layout
 * (`a windowed aggregate of moments of field 'value'`). `accumulation`: the one the task compiled, if it has it.
 */
export function operatorLayout(node: StatefulNode, accumulation?: Accumulation): string {
  switch (node.kind) {
    case 'aggregate':
    case 'reduce': {
      const { layout } = accumulation ?? accumulationOf(node)
      return `a ${node.window ? 'windowed' : 'running'} ${node.kind}${layout === undefined ? '' : ` of ${layout}`}`
    }
    case 'updateState':
      return 'an updateStateByKey'
    case 'detect':
      return `a ${node.detector.kind} detector`
  }
}

/** The fingerprint of a planned topology: 16 hex digits of a SHA-256 (see the top of this file for what it covers). */
export function topologyFingerprint(plan: Plan): string {
  const subtopologies = plan.subtopologies.map((sub) => ({
    source: sub.sourceTopic,
    repartitions: sub.repartitionTopics,
    changelog: sub.changelogTopic,
    operators: (sub.stateful as StatefulNode[]).map((node) => [
      node.name,
      operatorLayout(node),
      (node.kind === 'aggregate' || node.kind === 'reduce') && node.window ? stateLayout(node.window, formatMs) : null,
    ]),
  }))
  return createHash('sha256').update(JSON.stringify(subtopologies)).digest('hex').slice(0, 16)
}

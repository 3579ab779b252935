/**
 * Brook's stream processor: build a Topology with the DSL, inspect it with `describeTopology`, run it with
 * `runPipeline` against any Kafka cluster. `iotPipeline` is the built-in IoT pipeline.
 */
export { TopologyBuilder, Stream, GroupedStream, WindowedStream, WindowResultStream, staticTable, type WindowResultValue, type WindowedResults, type KeyField, type NotText } from './topology/builder.js'
export { eventTime, isTopology, type Topology, type RecordContext, type RecordKey, type EventTimeSpec, type TableSpec } from './topology/topology.js'
export { describeTopology } from './topology/describe.js'
export { planTopology, type Plan, type SubTopology } from './topology/plan.js'
export { tumbling, hopping, sliding, session, type WindowSpec, type SessionWindowSpec } from './windows/spec.js'
export type { EmitMode } from './windows/windowed-aggregate.js'
export { count, sum, avg, min, max, variance, stddev, first, last, percentile, type AggregationSpec, type AggregationsSpec, type AggregationsOf, type AggregationResults, type AggregationOutput, type NumericPath, type ValueSelector } from './aggregate/aggregations.js'
export { threshold, zScore, rateOfChange, type DetectorSpec, type Alert, type ThresholdBounds, type ThresholdPer } from './anomaly.js'
export { json, string, bytes, type Serde, type Serializer, type Deserializer } from './serde.js'
export { RecordError, TopologyError, GuaranteeError, ProcessorErrorCode } from './errors.js'
export { toMs, type Duration } from './time.js'
export { runPipeline, type RunOptions, type RunningPipeline, type OutputEvent, type TaskStatus } from './runtime/runner.js'
export type { ProcessingGuarantee } from './runtime/guarantee.js'
export { COMPRESSION_NAMES, type CompressionName } from './runtime/compression-names.js'
export { logClientRejections } from './runtime/client-rejections.js'
export type { Metrics } from './runtime/metrics.js'
export { HeaderNames } from './runtime/task.js'
export { iotPipeline, validateReading, type IotPipelineOptions, type Reading } from './iot.js'
export { DEFAULT_THRESHOLD_ABOVE, DEFAULT_THRESHOLDS } from './iot-thresholds.js'

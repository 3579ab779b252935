/**
 * The codecs a pipeline writes with (RunOptions.compressionType, `brook process --compression-type`), by Kafka's
 * compression.type names; codecs.ts maps each to kafkajs's number. Apart from codecs.ts, which loads kafkajs, so
 * that a command declares the flag's choices without loading kafkajs.
 */
export const COMPRESSION_NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const
export type CompressionName = (typeof COMPRESSION_NAMES)[number]

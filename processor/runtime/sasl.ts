/**
 * A cluster without SASL, such as Brook. A kafkajs client given `sasl` settings authenticates right after
 * ApiVersions with SaslHandshake (ApiKey 17, KIP-43) and then SaslAuthenticate (KIP-152); a cluster whose ApiVersions
 * does not list SaslHandshake makes kafkajs throw KafkaJSServerDoesNotSupportApiKey, whose message ("The Kafka server
 * does not support the requested API version") does not say that the `sasl` setting is what the cluster cannot serve.
 * SASL stays a setting for other clusters (Kafka lists SaslHandshake on every listener), so it is named only when a
 * cluster turns it down.
 */

/** SaslHandshake's ApiKey (SaslHandshakeRequest.json). */
const SASL_HANDSHAKE_API_KEY = 17

/**
 * What to say when `error`, from a kafkajs client's connect, is that client's SASL handshake finding no SaslHandshake
 * in the cluster's ApiVersions; null for any other error.
 */
export function saslNotOffered(error: unknown): string | null {
  const { name, apiKey } = (error ?? {}) as { name?: unknown; apiKey?: unknown }
  if (name !== 'KafkaJSServerDoesNotSupportApiKey' || apiKey !== SASL_HANDSHAKE_API_KEY) return null
  return 'the cluster does not support SASL (its ApiVersions lists no SaslHandshake; Brook has no SASL): connect without sasl in the kafkajs settings (--kafka-config)'
}

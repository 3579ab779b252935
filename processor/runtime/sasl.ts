/**
 * A cluster without SASL, such as Brook. A kafkajs client given `sasl` settings authenticates right after
 * ApiVersions with SaslHandshake (ApiKey 17, KIP-43) and then SaslAuthenticate (KIP-152). A PLAINTEXT listener (Kafka's,
 * and Brook's, which are all PLAINTEXT) answers the handshake ILLEGAL_SASL_STATE, and kafkajs throws a
 * KafkaJSProtocolError "Request is not valid given the current SASL state"; a cluster whose ApiVersions does not list
 * SaslHandshake makes kafkajs throw KafkaJSServerDoesNotSupportApiKey ("The Kafka server does not support the
 * requested API version"). Neither says that the `sasl` setting is what the cluster cannot serve. SASL stays a
 * setting for other clusters, so it is named only when a cluster turns it down.
 */

/** SaslHandshake's ApiKey (SaslHandshakeRequest.json). */
const SASL_HANDSHAKE_API_KEY = 17

/**
 * What to say when `error`, from a kafkajs client's connect, is that client's SASL handshake turned down (answered
 * ILLEGAL_SASL_STATE, or SaslHandshake missing from the cluster's ApiVersions); null for any other error.
 */
export function saslNotOffered(error: unknown): string | null {
  const { name, apiKey, type } = (error ?? {}) as { name?: unknown; apiKey?: unknown; type?: unknown }
  if (name === 'KafkaJSProtocolError' && type === 'ILLEGAL_SASL_STATE') {
    return 'the cluster does not support SASL (it answers SaslHandshake ILLEGAL_SASL_STATE, as a PLAINTEXT listener does; Brook has no SASL): connect without sasl in the kafkajs settings (--kafka-config)'
  }
  if (name !== 'KafkaJSServerDoesNotSupportApiKey' || apiKey !== SASL_HANDSHAKE_API_KEY) return null
  return 'the cluster does not support SASL (its ApiVersions lists no SaslHandshake): connect without sasl in the kafkajs settings (--kafka-config)'
}

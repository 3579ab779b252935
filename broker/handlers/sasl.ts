/**
 * SaslHandshake v0-1 and SaslAuthenticate v0-2, answered as a Kafka node answers them on a PLAINTEXT listener
 * (KafkaApis.handleSaslHandshakeRequest / handleSaslAuthenticateRequest): Brook's listeners are all PLAINTEXT, so
 * there is no SASL exchange to take part in, and both answer ILLEGAL_SASL_STATE.
 *
 * Behaviour
 * - Both APIs are advertised in ApiVersions, as Kafka advertises them on every listener: a client configured for SASL
 *   (kafkajs's `sasl`, librdkafka's `security.protocol=SASL_PLAINTEXT`) sends its handshake and is told
 *   ILLEGAL_SASL_STATE ("Request is not valid given the current SASL state"), where a missing API would read as a
 *   version mismatch. SaslHandshake lists no mechanisms; SaslAuthenticate carries Kafka's message and no auth bytes.
 * - Nothing changes on the connection: the client closes it or carries on unauthenticated, as with Kafka.
 */
import { saslHandshake, type SaslHandshakeRequest, type SaslHandshakeResponse } from '../../protocol/messages/sasl-handshake.js'
import { saslAuthenticate, type SaslAuthenticateRequest, type SaslAuthenticateResponse } from '../../protocol/messages/sasl-authenticate.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler } from '../handler.js'

export const saslHandshakeHandler = defineHandler<SaslHandshakeRequest, SaslHandshakeResponse>(saslHandshake, '0-1', () => ({
  errorCode: ErrorCode.ILLEGAL_SASL_STATE,
  mechanisms: [],
}))

export const saslAuthenticateHandler = defineHandler<SaslAuthenticateRequest, SaslAuthenticateResponse>(saslAuthenticate, '0-2', () => ({
  errorCode: ErrorCode.ILLEGAL_SASL_STATE,
  // Kafka's words for a SaslAuthenticate that reaches KafkaApis.
  errorMessage: 'SaslAuthenticate request received after successful authentication',
  authBytes: Buffer.alloc(0),
  sessionLifetimeMs: 0n,
}))

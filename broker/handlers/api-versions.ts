/**
 * ApiVersions: v0-4.
 *
 * Behaviour
 * - Answers with the dispatcher's table, so what is advertised is exactly what has a handler.
 * - v3 requests carry the client's software name and version; invalid ones get INVALID_REQUEST and no ranges, as in
 *   Kafka (ApiVersionsRequest.isValid: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`, getErrorResponse).
 * - A request for a version we lack is answered by the connection with a v0 body, UNSUPPORTED_VERSION and
 *   ApiVersions' own range alone (KIP-511, ApiVersionsRequest.getErrorResponse); kafkajs then retries a lower version,
 *   librdkafka and Kafka's clients retry at min(their max, our max).
 *
 * Version notes
 * - The response header is always v0, even for flexible v3 (ApiVersionsResponse.json): protocol/frame.ts.
 * - No SupportedFeatures/FinalizedFeatures tags are sent: Brook has no feature flags.
 * - v4 is v3 with KAFKA-17011 fixed (a supported feature's minVersion may be 0); with no features to send, Brook's
 *   answer is the same. Kafka 4's Java clients ask v4 first.
 */
import { apiVersions, type ApiVersionsRequest, type ApiVersionsResponse } from '../../protocol/messages/api-versions.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler } from '../handler.js'

const SOFTWARE = /^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$/

export const apiVersionsHandler = defineHandler<ApiVersionsRequest, ApiVersionsResponse>(
  apiVersions,
  '0-4',
  (request, { apiVersion, services }) => {
    const valid =
      apiVersion < 3 || (SOFTWARE.test(request.clientSoftwareName) && SOFTWARE.test(request.clientSoftwareVersion))
    if (!valid) return { errorCode: ErrorCode.INVALID_REQUEST, apiKeys: [], throttleTimeMs: 0 }
    return { errorCode: ErrorCode.NONE, apiKeys: [...services.apiVersions], throttleTimeMs: 0 }
  },
)

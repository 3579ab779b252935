/**
 * DescribeAcls, CreateAcls and DeleteAcls: v0-3 each (KIP-140; `kafka-acls.sh`, Admin.describeAcls/createAcls/
 * deleteAcls), answered as a Kafka node without an authorizer answers them (AclApis, `authorizer` None).
 *
 * Behaviour
 * - Brook has no authorizer (no SASL, no ACLs: every client may do everything, and the authorized operations that
 *   Metadata, DescribeGroups and DescribeCluster report say so). So DescribeAcls answers SECURITY_DISABLED "No
 *   Authorizer is configured on the broker" and no resources; CreateAcls answers SECURITY_DISABLED "No Authorizer is
 *   configured." for each creation, DeleteAcls the same for each filter with no matching ACLs. Nothing is stored.
 *   A tool that lists ACLs thus learns that there are none to list, in Kafka's words, instead of a missing API.
 * - The filters and creations are not checked first: Kafka answers SECURITY_DISABLED before it looks at them (its
 *   request parsing refuses a v0 filter that is not LITERAL, which no client sends).
 * - On a cluster each node answers for itself; Kafka forwards CreateAcls and DeleteAcls to its controller, which
 *   without an authorizer answers the same.
 *
 * Version notes
 * - v1 adds the resource pattern type (KIP-290: LITERAL 3, PREFIXED 4, the filters' ANY 1 and MATCH 2); v2 is the
 *   first flexible version; v3 adds the operations CREATE_TOKENS and DESCRIBE_TOKENS (KIP-373). None changes the
 *   answer.
 */
import { describeAcls, type DescribeAclsRequest, type DescribeAclsResponse } from '../../protocol/messages/describe-acls.js'
import { createAcls, type CreateAclsRequest, type CreateAclsResponse } from '../../protocol/messages/create-acls.js'
import { deleteAcls, type DeleteAclsRequest, type DeleteAclsResponse } from '../../protocol/messages/delete-acls.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler } from '../handler.js'

/** Kafka's messages, word for word: DescribeAcls has its own. */
const NO_AUTHORIZER_DESCRIBE = 'No Authorizer is configured on the broker'
const NO_AUTHORIZER = 'No Authorizer is configured.'

export const describeAclsHandler = defineHandler<DescribeAclsRequest, DescribeAclsResponse>(describeAcls, '0-3', () => ({
  throttleTimeMs: 0,
  errorCode: ErrorCode.SECURITY_DISABLED,
  errorMessage: NO_AUTHORIZER_DESCRIBE,
  resources: [],
}))

export const createAclsHandler = defineHandler<CreateAclsRequest, CreateAclsResponse>(createAcls, '0-3', (request) => ({
  throttleTimeMs: 0,
  results: request.creations.map(() => ({ errorCode: ErrorCode.SECURITY_DISABLED, errorMessage: NO_AUTHORIZER })),
}))

export const deleteAclsHandler = defineHandler<DeleteAclsRequest, DeleteAclsResponse>(deleteAcls, '0-3', (request) => ({
  throttleTimeMs: 0,
  filterResults: request.filters.map(() => ({ errorCode: ErrorCode.SECURITY_DISABLED, errorMessage: NO_AUTHORIZER, matchingAcls: [] })),
}))

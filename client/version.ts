/**
 * Brook's version, package.json's (test/cli/errors.test.ts checks that they agree): what `brook --version` prints, and
 * the client software version Brook's client sends in ApiVersions v3+ (KIP-511). A module of its own, so that the CLI
 * reads it without loading the client.
 */
export const BROOK_VERSION = '0.1.0'

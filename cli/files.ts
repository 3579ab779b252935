/**
 * Files named on the command line (--file, --config, --kafka-config, a pipeline module): why one cannot be read, in one
 * line that names it. The reasons are the simulator's (fileErrorReason), so a replay file's error reads the same.
 */
import { fileErrorReason } from '../processor/simulator/errors.js'

/**
 * `cannot read <path>: <reason>` for a failed open, stat or read: `error` is Node's error (its `code` picks the
 * reason), or `{ code: 'EISDIR' }` where a directory was opened without a read having failed yet.
 */
export function cannotRead(path: string, error: unknown): Error {
  return new Error(`cannot read ${path}: ${fileErrorReason(error)}`)
}

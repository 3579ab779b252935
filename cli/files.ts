/**
 * Files named on the command line (--file, --config, --kafka-config, a pipeline module): why one cannot be read, in one
 * line that names it.
 */

/** Node's error codes for a file that cannot be read, in words; other codes are shown as they are. */
const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent of it is not a directory',
  EACCES: 'permission denied',
}

/**
 * `cannot read <path>: <reason>` for a failed open, stat or read: `error` is Node's error (its `code` picks the
 * reason), or `{ code: 'EISDIR' }` where a directory was opened without a read having failed yet.
 */
export function cannotRead(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code
  const reason = (code === undefined ? undefined : REASONS[code]) ?? code ?? (error as Error).message
  return new Error(`cannot read ${path}: ${reason}`)
}

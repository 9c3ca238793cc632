// Typed errors of the storage adapters beyond those fixed in port.ts: corrupt data on disk and databases
// that cannot be opened, plus the StoreClosedError a failed store answers writes with.
import { QuorumdError } from '../core/errors.js';
import { StoreClosedError } from './port.js';

/** A stored record failed to decode: the file was damaged or written by something else. */
export class StorageCorruptionError extends QuorumdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage_corrupt', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** The database file could not be opened or configured (not a database, no permission, no WAL support). */
export class StorageOpenError extends QuorumdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage_open_failed', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** What a store that failed a commit answers every later write with; `cause` is the original failure. */
export function storeFailedError(cause: unknown): StoreClosedError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  const error = new StoreClosedError(`the store failed a commit and accepts no more writes: ${detail}`);
  error.cause = cause;
  return error;
}

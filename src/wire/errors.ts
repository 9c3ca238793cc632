// Typed error for bytes from the network or disk that do not decode to a well-formed value. Expected
// (a peer or a file can be wrong), so callers catch it; programmer errors use assert instead.
import { QuorumdError } from '../core/errors.js';

export class WireFormatError extends QuorumdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('wire_format', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

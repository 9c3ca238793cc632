// The HTTP API's expected failures: each becomes a JSON {error, message} answer with its status.

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: object;
  constructor(status: number, code: string, message: string, extra: object = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

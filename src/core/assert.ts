// Assertions for programmer errors (TigerBeetle style): they stay on in production and never guard
// against bad input, which gets a typed error instead (see errors.ts).
export class AssertionError extends Error {
  static readonly errorName = 'AssertionError';
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = AssertionError.errorName;
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}

// The causal-context token handed to clients (X-Causal-Context): an opaque, URL-safe encoding of a version
// vector. Clients return it on their next write so the write supersedes exactly what they read.
import { fromString, toString } from 'uint8arrays';
import { InvalidContextError } from '../core/errors.js';
import { type VersionVector, vvEntries, vvFromEntries } from '../core/vv.js';

/** Tokens longer than this are refused (a vector of a few hundred devices fits easily). */
export const CONTEXT_TOKEN_CHARS_MAX = 64 * 1024;
const ACTORS_MAX = 4096;

export function encodeContextToken(vv: VersionVector): string {
  return toString(new TextEncoder().encode(JSON.stringify(vvEntries(vv))), 'base64url');
}

export function decodeContextToken(token: string): VersionVector {
  if (token.length === 0) return {};
  if (token.length > CONTEXT_TOKEN_CHARS_MAX) throw new InvalidContextError('causal context token is too long');
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new InvalidContextError('causal context token is not base64url');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromString(token, 'base64url')));
  } catch {
    throw new InvalidContextError('causal context token cannot be decoded');
  }
  if (!Array.isArray(parsed) || parsed.length > ACTORS_MAX) throw new InvalidContextError('causal context token is malformed');
  const entries: Array<[string, number]> = [];
  for (const entry of parsed as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new InvalidContextError('causal context token is malformed');
    const [actor, counter] = entry as unknown[];
    if (typeof actor !== 'string' || actor.length === 0 || actor.length > 256) {
      throw new InvalidContextError('causal context token has a bad actor');
    }
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter <= 0) {
      throw new InvalidContextError('causal context token has a bad counter');
    }
    entries.push([actor, counter]);
  }
  return vvFromEntries(entries);
}

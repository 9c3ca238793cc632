// The causal-context token handed to clients (X-Causal-Context): a URL-safe encoding of a version vector,
// authenticated with a key derived from the cluster key, so every member accepts the tokens of every other
// member, and a forged or corrupted token (which could cover writes that do not exist yet and so silently
// supersede them later) is refused with 400.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { fromString, toString } from 'uint8arrays';
import { InvalidContextError } from '../core/errors.js';
import { type VersionVector, vvEntries, vvFromEntries } from '../core/vv.js';

/** Tokens longer than this are refused (a vector of a few hundred devices fits easily). */
export const CONTEXT_TOKEN_CHARS_MAX = 64 * 1024;
const ACTORS_MAX = 4096;
/** Bytes of HMAC-SHA256 kept in a token: 128 bits, ample against forgery over a local API. */
const TAG_BYTES = 16;

export interface ContextCodec {
  encode(vv: VersionVector): string;
  /** Throws InvalidContextError for anything but a well-formed token issued by this cluster. */
  decode(token: string): VersionVector;
}

/** A codec keyed by the cluster key (any secret shared by all members). */
export function createContextCodec(clusterKey: Uint8Array): ContextCodec {
  const key = createHash('sha256').update('quorumd/context-token/1').update(clusterKey).digest();
  const tag = (body: string): Buffer => createHmac('sha256', key).update(body).digest().subarray(0, TAG_BYTES);
  return {
    encode(vv: VersionVector): string {
      const body = toString(new TextEncoder().encode(JSON.stringify(vvEntries(vv))), 'base64url');
      return `${body}.${toString(tag(body), 'base64url')}`;
    },
    decode(token: string): VersionVector {
      if (token.length === 0) return {};
      if (token.length > CONTEXT_TOKEN_CHARS_MAX) throw new InvalidContextError('causal context token is too long');
      const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
      if (match === null) throw new InvalidContextError('causal context token is malformed (use the token a read or write returned)');
      const [, body, mac] = match as unknown as [string, string, string];
      let given: Uint8Array;
      try {
        given = fromString(mac, 'base64url');
      } catch {
        throw new InvalidContextError('causal context token is malformed');
      }
      if (given.length !== TAG_BYTES || !timingSafeEqual(given, tag(body))) {
        throw new InvalidContextError('causal context token was not issued by this cluster (or was altered)');
      }
      return parseEntries(body);
    },
  };
}

function parseEntries(body: string): VersionVector {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromString(body, 'base64url')));
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

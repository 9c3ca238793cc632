// The causal-context token handed to clients (X-Causal-Context): a URL-safe encoding of what a client has seen
// of one key (a version vector, minus the versions its last write left concurrent), bound to that key and
// authenticated with a key derived from the cluster key. Every member accepts the tokens of every other
// member; a forged or corrupted token (which could cover writes that do not exist yet and so silently
// supersede them later) or a token issued for another key (which covers versions of that key, not of this
// one) is refused with 400.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { fromString, toString } from 'uint8arrays';
import { InvalidContextError } from '../core/errors.js';
import { type ClientContext, compareDots } from '../core/record.js';
import { type Dot, type VersionVector, covers, vvEntries, vvFromEntries } from '../core/vv.js';

/** Tokens longer than this are refused (a vector of a few hundred devices fits easily). */
export const CONTEXT_TOKEN_CHARS_MAX = 64 * 1024;
const ACTORS_MAX = 4096;
/** Versions left concurrent that a token may exclude (a write keeps at most the key's siblings). */
const UNSEEN_MAX = 4096;
/** Bytes of HMAC-SHA256 kept in a token: 128 bits, ample against forgery over a local API. */
const TAG_BYTES = 16;
/** Bytes of the key's SHA-256 a token names its key by (authenticated with the rest of the body). */
const KEY_TAG_BYTES = 16;

export interface ContextCodec {
  /** The token for `key`: covers what `vv` covers except the `unseen` dots. */
  encode(key: string, vv: VersionVector, unseen?: readonly Dot[]): string;
  /**
   * Throws InvalidContextError for anything but a well-formed token issued by this cluster for `key`.
   * The empty token is the empty context (a write that supersedes nothing).
   */
  decode(key: string, token: string): ClientContext;
}

/** A codec keyed by the cluster key (any secret shared by all members). */
export function createContextCodec(clusterKey: Uint8Array): ContextCodec {
  const key = createHash('sha256').update('quorumd/context-token/1').update(clusterKey).digest();
  const tag = (body: string): Buffer => createHmac('sha256', key).update(body).digest().subarray(0, TAG_BYTES);
  return {
    encode(kvKey: string, vv: VersionVector, unseen: readonly Dot[] = []): string {
      const fields: TokenBody = { k: keyTag(kvKey), c: vvEntries(vv) };
      if (unseen.length > 0) fields.u = [...unseen].sort(compareDots).map((d) => [d.actor, d.counter]);
      const body = toString(new TextEncoder().encode(JSON.stringify(fields)), 'base64url');
      return `${body}.${toString(tag(body), 'base64url')}`;
    },
    decode(kvKey: string, token: string): ClientContext {
      if (token.length === 0) return { vv: {}, unseen: [] };
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
      const parsed = parseBody(body);
      if (parsed.k !== keyTag(kvKey)) {
        throw new InvalidContextError('causal context token was issued for another key (a token is valid only for the key it was read or written with)');
      }
      return parsed.context;
    },
  };
}

interface TokenBody {
  /** The key's tag (keyTag). */
  k: string;
  /** The version vector's entries, sorted by actor. */
  c: Array<[string, number]>;
  /** The dots `c` covers that the client never saw; absent when none. */
  u?: Array<[string, number]>;
}

function keyTag(kvKey: string): string {
  return toString(createHash('sha256').update('quorumd/context-key/1\0').update(kvKey, 'utf8').digest().subarray(0, KEY_TAG_BYTES), 'base64url');
}

function parseBody(body: string): { k: string; context: ClientContext } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromString(body, 'base64url')));
  } catch {
    throw new InvalidContextError('causal context token cannot be decoded');
  }
  if (Array.isArray(parsed)) {
    throw new InvalidContextError('causal context token is from an older quorumd and names no key: read the key again for a new token');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new InvalidContextError('causal context token is malformed');
  const fields = parsed as Record<string, unknown>;
  if (typeof fields.k !== 'string') throw new InvalidContextError('causal context token names no key');
  const vv = vvFromEntries(parseEntries(fields.c, ACTORS_MAX));
  const unseen = fields.u === undefined ? [] : parseEntries(fields.u, UNSEEN_MAX).map(([actor, counter]) => ({ actor, counter }));
  if (!unseen.every((d) => covers(vv, d))) throw new InvalidContextError('causal context token is malformed');
  return { k: fields.k, context: { vv, unseen } };
}

function parseEntries(value: unknown, max: number): Array<[string, number]> {
  if (!Array.isArray(value) || value.length > max) throw new InvalidContextError('causal context token is malformed');
  const entries: Array<[string, number]> = [];
  for (const entry of value as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new InvalidContextError('causal context token is malformed');
    const [actor, counter] = entry as unknown[];
    // "__proto__" would vanish from a vector built as a plain object (the token would decode to less than it says).
    if (typeof actor !== 'string' || actor.length === 0 || actor.length > 256 || actor === '__proto__') {
      throw new InvalidContextError('causal context token has a bad actor');
    }
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter <= 0) {
      throw new InvalidContextError('causal context token has a bad counter');
    }
    entries.push([actor, counter]);
  }
  return entries;
}

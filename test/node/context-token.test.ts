// Context tokens (src/node/context-token.ts): URL-safe, bounded, authenticated by the cluster key, bound to one
// key, and carrying the versions a write left concurrent as exceptions.
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidContextError } from '../../src/core/errors.js';
import { CONTEXT_TOKEN_CHARS_MAX, createContextCodec } from '../../src/node/context-token.js';

const clusterKey = new TextEncoder().encode('a cluster key');
const codec = createContextCodec(clusterKey);

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidContextError);
    return (error as Error).message;
  }
  throw new Error('expected an InvalidContextError');
}

describe('context tokens', () => {
  it('round-trip a vector and its exceptions, URL-safe, for the key they were issued for', () => {
    const token = codec.encode('a/key ü', { 'peer~2': 7, other: 3 }, [{ actor: 'peer~2', counter: 5 }, { actor: 'other', counter: 1 }]);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(codec.decode('a/key ü', token)).toEqual({
      vv: { 'peer~2': 7, other: 3 },
      unseen: [{ actor: 'other', counter: 1 }, { actor: 'peer~2', counter: 5 }],
    });
    expect(codec.decode('k', codec.encode('k', { a: 1 }))).toEqual({ vv: { a: 1 }, unseen: [] });
    expect(codec.decode('k', '')).toEqual({ vv: {}, unseen: [] });
  });

  it('refuse a token issued for another key, saying so', () => {
    const token = codec.encode('a', { x: 1 });
    expect(refusal(() => codec.decode('b', token))).toContain('issued for another key');
    expect(refusal(() => codec.decode('A', token))).toContain('issued for another key');
  });

  it('refuse tokens of another cluster, altered ones, and oversized or malformed ones', () => {
    const foreign = createContextCodec(new TextEncoder().encode('another cluster key')).encode('k', { x: 1 });
    expect(refusal(() => codec.decode('k', foreign))).toContain('not issued by this cluster');
    const mac = codec.encode('k', { x: 1 }).split('.')[1] as string;
    const altered = Buffer.from(JSON.stringify({ k: 'x', c: [['x', 9]] })).toString('base64url');
    expect(refusal(() => codec.decode('k', `${altered}.${mac}`))).toContain('not issued by this cluster');
    expect(refusal(() => codec.decode('k', 'x'.repeat(CONTEXT_TOKEN_CHARS_MAX + 1)))).toContain('too long');
    expect(refusal(() => codec.decode('k', 'no-dot'))).toContain('malformed');
  });

  it('refuse a well-authenticated token from before tokens named their key, asking for a new read', () => {
    // The earlier format: the vector's entries only, under the same authentication key.
    const key = createHash('sha256').update('quorumd/context-token/1').update(clusterKey).digest();
    const body = Buffer.from(JSON.stringify([['x', 1]])).toString('base64url');
    const mac = createHmac('sha256', key).update(body).digest().subarray(0, 16).toString('base64url');
    expect(refusal(() => codec.decode('k', `${body}.${mac}`))).toContain('read the key again');
  });

  it('refuse exceptions the vector does not cover (no token this cluster issues has them)', () => {
    const key = createHash('sha256').update('quorumd/context-token/1').update(clusterKey).digest();
    const k = codec.encode('k', {}).split('.')[0] as string;
    const fields = JSON.parse(Buffer.from(k, 'base64url').toString()) as { k: string };
    const body = Buffer.from(JSON.stringify({ k: fields.k, c: [['x', 1]], u: [['x', 2]] })).toString('base64url');
    const mac = createHmac('sha256', key).update(body).digest().subarray(0, 16).toString('base64url');
    expect(refusal(() => codec.decode('k', `${body}.${mac}`))).toContain('malformed');
  });
});

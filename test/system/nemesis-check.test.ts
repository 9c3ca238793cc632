// The nemesis checker (scripts/nemesis-check.mjs) on synthetic histories: it must report a lost write, a stale
// read and a resurrected delete, and must not report legitimate outcomes (concurrent, failed or unknown writes).
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHistory, selfTestCases, type NemesisOp } from '../../scripts/nemesis-check.mjs';
import { runProcess } from '../helpers/procs.js';

let nextId = 0;
const put = (key: string, value: string, start: number, end: number, extra: Partial<NemesisOp> = {}): NemesisOp =>
  ({ id: nextId++, key, kind: 'put', value, ctx: null, start, end, outcome: 'ok', ...extra });
const del = (key: string, ctx: string[], start: number, end: number, extra: Partial<NemesisOp> = {}): NemesisOp =>
  ({ id: nextId++, key, kind: 'del', ctx, start, end, outcome: 'ok', ...extra });
const get = (key: string, values: string[], start: number, end: number, extra: Partial<NemesisOp> = {}): NemesisOp =>
  ({ id: nextId++, key, kind: 'get', values, start, end, outcome: 'ok', ...extra });
const final = (key: string, values: string[], at = 1000): NemesisOp => get(key, values, at, at + 5, { final: true });

describe('nemesis checker', () => {
  it('reports a lost write, a stale read and a resurrected delete in one history, each once', () => {
    const history = [
      // k1: acked, then gone from every device in the final check.
      put('k1', 'v1', 0, 10),
      final('k1', []),
      final('k1', [], 1001),
      // k2: acked at 20; a read that began at 30 misses it (it is there in the end).
      put('k2', 'v2', 10, 20),
      get('k2', [], 30, 35),
      final('k2', ['v2']),
      // k3: read, deleted with that read's context (acked at 60), back in the final check.
      put('k3', 'v3', 0, 10),
      get('k3', ['v3'], 40, 45),
      del('k3', ['v3'], 50, 60),
      final('k3', ['v3']),
      final('k3', ['v3'], 1001),
    ];
    const result = checkHistory(history);
    expect(result).toMatchObject({ lost: 1, staleReads: 1, resurrected: 1, unexpected: 0, writesAcked: 3, deletesAcked: 1 });
    expect(result.examples.lost).toEqual([expect.objectContaining({ key: 'k1', value: 'v1' })]);
    expect(result.examples.stale).toEqual([expect.objectContaining({ key: 'k2', final: false, missing: [{ value: 'v2', ackedAt: 20 }] })]);
    expect(result.examples.resurrected).toEqual([expect.objectContaining({ key: 'k3', value: 'v3', deletedAt: 60 })]);
  });

  it('does not call a read stale when a later mutation may have superseded the value', () => {
    const history = [
      put('k', 'v1', 0, 10),
      put('k', 'v2', 15, 20, { outcome: 'unknown' }), // no answer: it may still have been applied
      get('k', ['v2'], 30, 35),
      final('k', ['v2']),
    ];
    expect(checkHistory(history)).toMatchObject({ lost: 0, staleReads: 0, resurrected: 0 });
    // ...but a write whose coordinator was killed (effEnd) before v1's write began cannot have superseded it.
    const killed = [put('k', 'v2', 1, 4, { outcome: 'unknown', effEnd: 4 }), put('k', 'v1', 5, 10), get('k', ['v2'], 30, 35), final('k', ['v2'])];
    expect(checkHistory(killed)).toMatchObject({ lost: 1, staleReads: 1 });
  });

  for (const c of selfTestCases) {
    it(`self-test case: ${c.name}`, () => {
      const got = checkHistory(c.ops);
      expect({ lost: got.lost, staleReads: got.staleReads, resurrected: got.resurrected, unexpected: got.unexpected }).toEqual(c.expect);
    });
  }

  it('`nemesis --self-test` runs the same cases and exits 0', async () => {
    const script = resolve(import.meta.dirname, '../../scripts/nemesis.mjs');
    const res = await runProcess([process.execPath, script, '--self-test'], { timeoutMs: 20_000 });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain('all cases got the expected verdict');
  });
});

// The nemesis checker: from a recorded client-side history of quorum writes, context-carrying writes and deletes
// and quorum reads, finds lost acknowledged writes, stale reads, resurrected deletes and values nobody wrote. Pure
// (no IO, no clock); scripts/nemesis.mjs records the history, test/system/nemesis-check.test.ts tests this file.
//
// The rules, with every time measured by the one client process (starts taken before sending, ends when the
// answer arrived, so every error makes the checker more lenient, never stricter):
// - A mutation (put/del) O "may supersede" an acknowledged write W of value v (read ending at time T) when O is
//   not W, O started before T, O's version can have been created after W started (O's effective end > W's start)
//   and O either carried no context (it supersedes whatever its coordinator had seen) or carried the context of a
//   read that returned v. Its effective end is its answer's arrival for any answer (the coordinator created the
//   version before answering, also for a 503), the kill time of its coordinator when the connection broke and we
//   had killed that process, else infinity. A request that was refused at connect was never sent and counts not.
// - Stale read: a quorum read that started after W was acknowledged misses v, and no mutation may supersede W
//   before the read ended; or it returns v although an acknowledged context-carrying put covering v (its read
//   returned v) was acknowledged before the read started.
// - Resurrected: a read returns v although an acknowledged context-carrying delete covering v was acknowledged
//   before the read started (counted once per key and value).
// - Lost: W is missing from every answered read of the final check, and no mutation may supersede it (those
//   final reads then count as lost, not also as stale).
// - Unexpected: a read returns a value that no request of this run wrote to that key.

/**
 * @typedef {{ id: number, key: string, kind: 'put' | 'del' | 'get', value?: string, ctx?: string[] | null,
 *   start: number, end: number, outcome: 'ok' | 'failed' | 'unknown' | 'not-sent', effEnd?: number,
 *   values?: string[], final?: boolean, device?: string }} Op
 */

/** Checks a history (see the rules above); returns counts and the first examples of each violation. */
export function checkHistory(ops, { examples = 20 } = {}) {
  const writerOf = new Map();
  for (const op of ops) if (op.kind === 'put' && op.outcome !== 'not-sent') writerOf.set(op.value, op);
  const byKey = new Map();
  for (const op of ops) {
    if (op.outcome === 'not-sent') continue;
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  const out = {
    writesAttempted: 0, writesAcked: 0, deletesAttempted: 0, deletesAcked: 0, reads: 0, readsOk: 0, finalReads: 0,
    lost: 0, staleReads: 0, resurrected: 0, unexpected: 0, uncheckedWrites: 0,
    examples: { lost: [], stale: [], resurrected: [], unexpected: [] },
  };
  const note = (kind, item) => {
    if (out.examples[kind].length < examples) out.examples[kind].push(item);
  };
  for (const op of ops) {
    if (op.outcome === 'not-sent') continue;
    if (op.kind === 'put') out.writesAttempted += 1;
    if (op.kind === 'del') out.deletesAttempted += 1;
    if (op.kind === 'get') out.reads += 1;
    if (op.outcome !== 'ok') continue;
    if (op.kind === 'put') out.writesAcked += 1;
    if (op.kind === 'del') out.deletesAcked += 1;
    if (op.kind === 'get') out.readsOk += 1;
    if (op.kind === 'get' && op.final) out.finalReads += 1;
  }

  for (const [key, keyOps] of byKey) {
    const mutations = keyOps.filter((o) => o.kind !== 'get');
    const ackedPuts = mutations.filter((o) => o.kind === 'put' && o.outcome === 'ok');
    const reads = keyOps.filter((o) => o.kind === 'get' && o.outcome === 'ok');
    const finals = reads.filter((r) => r.final);
    const effEnd = (o) => (o.outcome === 'unknown' ? (o.effEnd ?? Infinity) : o.end);
    const maySupersede = (o, w, until) =>
      o !== w && o.start < until && effEnd(o) > w.start && (o.ctx == null || o.ctx.includes(w.value));
    const excused = (w, until) => mutations.some((o) => maySupersede(o, w, until));
    /** The acknowledged context-carrying mutation that covers v and was acknowledged before `t`, if any. */
    const killerOf = (v, t) => mutations.find((o) => o.outcome === 'ok' && o.ctx != null && o.ctx.includes(v) && o.end < t);

    // Lost: missing from every answered final read, and nothing may have superseded it.
    const lost = new Set();
    for (const w of ackedPuts) {
      if (finals.length === 0) {
        out.uncheckedWrites += 1;
        continue;
      }
      if (excused(w, Infinity)) continue;
      if (finals.every((r) => !r.values.includes(w.value))) {
        lost.add(w);
        out.lost += 1;
        note('lost', { key, value: w.value, ackedAt: w.end, device: w.device });
      }
    }

    const resurrected = new Set();
    for (const r of reads) {
      const seen = new Set(r.values);
      for (const v of seen) {
        const writer = writerOf.get(v);
        if (writer === undefined || writer.key !== key) {
          out.unexpected += 1;
          note('unexpected', { key, value: v, readId: r.id, device: r.device });
        }
      }
      const missing = ackedPuts.filter((w) => w.end < r.start && !seen.has(w.value) && !(r.final && lost.has(w)) && !excused(w, r.end));
      const overwritten = [];
      for (const v of seen) {
        const killer = killerOf(v, r.start);
        if (killer === undefined) continue;
        if (killer.kind === 'put') {
          overwritten.push({ value: v, overwrittenAt: killer.end });
        } else if (!resurrected.has(v)) {
          resurrected.add(v);
          out.resurrected += 1;
          note('resurrected', { key, value: v, deletedAt: killer.end, readAt: r.start, readId: r.id, final: Boolean(r.final), device: r.device });
        }
      }
      if (missing.length > 0 || overwritten.length > 0) {
        out.staleReads += 1;
        note('stale', {
          key, readId: r.id, readAt: r.start, final: Boolean(r.final), device: r.device,
          missing: missing.map((w) => ({ value: w.value, ackedAt: w.end })), overwritten,
        });
      }
    }
  }
  return out;
}

/** Synthetic histories with the verdict each must get: the checker's own test (also `nemesis --self-test`). */
export const selfTestCases = (() => {
  let id = 0;
  const put = (key, value, start, end, outcome = 'ok', extra = {}) => ({ id: id++, key, kind: 'put', value, ctx: null, start, end, outcome, ...extra });
  const del = (key, ctx, start, end, outcome = 'ok', extra = {}) => ({ id: id++, key, kind: 'del', ctx, start, end, outcome, ...extra });
  const get = (key, values, start, end, extra = {}) => ({ id: id++, key, kind: 'get', values, start, end, outcome: 'ok', ...extra });
  const fin = (key, values, at = 1000) => get(key, values, at, at + 1, { final: true });
  const none = { lost: 0, staleReads: 0, resurrected: 0, unexpected: 0 };
  return [
    { name: 'clean history', expect: none,
      ops: [put('a', 'a1', 0, 10), get('a', ['a1'], 20, 25), fin('a', ['a1']), fin('a', ['a1'], 1001)] },
    { name: 'lost write', expect: { ...none, lost: 1 },
      ops: [put('a', 'a1', 0, 10), fin('a', []), fin('a', [], 1001)] },
    { name: 'stale read (missing acked value)', expect: { ...none, staleReads: 1 },
      ops: [put('a', 'a1', 0, 10), get('a', [], 20, 25), fin('a', ['a1'])] },
    { name: 'stale read in the final check (one device misses what another has)', expect: { ...none, staleReads: 1 },
      ops: [put('a', 'a1', 0, 10), fin('a', ['a1']), fin('a', [], 1001)] },
    { name: 'resurrected delete', expect: { ...none, resurrected: 1 },
      ops: [put('a', 'a1', 0, 10), get('a', ['a1'], 15, 18), del('a', ['a1'], 20, 30), get('a', [], 35, 40), fin('a', ['a1'])] },
    { name: 'resurrection seen twice counts once', expect: { ...none, resurrected: 1 },
      ops: [put('a', 'a1', 0, 10), del('a', ['a1'], 20, 30), get('a', ['a1'], 35, 40), fin('a', ['a1'])] },
    { name: 'overwritten value visible after an acked context put', expect: { ...none, staleReads: 1 },
      ops: [put('a', 'a1', 0, 10), put('a', 'a2', 20, 30, 'ok', { ctx: ['a1'] }), get('a', ['a1', 'a2'], 35, 40), fin('a', ['a2'])] },
    { name: 'value nobody wrote', expect: { ...none, unexpected: 1 },
      ops: [put('a', 'a1', 0, 10), put('b', 'b1', 0, 10), fin('a', ['a1', 'b1']), fin('b', ['b1'])] },
    { name: 'read that began before the ack may miss it', expect: none,
      ops: [put('a', 'a1', 0, 10), get('a', [], 5, 12), fin('a', ['a1'])] },
    { name: 'a later plain put may supersede (also when its outcome is unknown)', expect: none,
      ops: [put('a', 'a1', 0, 10), put('a', 'a2', 12, 20, 'unknown'), get('a', ['a2'], 50, 55), fin('a', ['a2'])] },
    { name: 'a 503 write exists too and may supersede', expect: none,
      ops: [put('a', 'a1', 0, 10), put('a', 'a2', 12, 20, 'failed'), fin('a', ['a2'])] },
    { name: 'a delete with an acked context removes the value', expect: none,
      ops: [put('a', 'a1', 0, 10), del('a', ['a1'], 20, 30), get('a', [], 35, 40), fin('a', [])] },
    { name: 'a context put whose read did not return the value cannot supersede it', expect: { ...none, staleReads: 1, lost: 1 },
      ops: [put('a', 'a1', 0, 10), put('a', 'a2', 20, 30, 'failed', { ctx: ['a0'] }), get('a', ['a2'], 35, 40), fin('a', ['a2'])] },
    { name: 'a request refused at connect was never sent', expect: { ...none, staleReads: 1 },
      ops: [put('a', 'a1', 0, 10), put('a', 'a2', 12, 13, 'not-sent'), get('a', [], 20, 25), fin('a', ['a1'])] },
    { name: 'an unknown write whose coordinator was killed before the acked write began cannot supersede it',
      expect: { ...none, staleReads: 1, lost: 1 },
      ops: [put('a', 'a2', 2, 9, 'unknown', { effEnd: 8 }), put('a', 'a1', 9, 15), get('a', ['a2'], 20, 25), fin('a', ['a2'])] },
    { name: 'siblings: both values present is fine', expect: none,
      ops: [put('a', 'a1', 0, 10), put('a', 'a2', 5, 12), get('a', ['a1', 'a2'], 20, 25), fin('a', ['a1', 'a2'])] },
    { name: 'no final read: unchecked, not lost', expect: none,
      ops: [put('a', 'a1', 0, 10)] },
  ];
})();

/** Runs the self-test cases; returns the names of those that got another verdict (empty: the checker works). */
export function runSelfTest() {
  const failures = [];
  for (const c of selfTestCases) {
    const got = checkHistory(c.ops);
    const verdict = { lost: got.lost, staleReads: got.staleReads, resurrected: got.resurrected, unexpected: got.unexpected };
    if (JSON.stringify(verdict) !== JSON.stringify(c.expect)) failures.push(`${c.name}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(verdict)}`);
  }
  return failures;
}

// Durability receipts: who holds the merge of every version the replicas reported.
import { describe, expect, it } from 'vitest';
import { withLearnerAdded } from '../../src/core/membership.js';
import { EMPTY_RECORD, applyWrite } from '../../src/core/record.js';
import { receiptOf } from '../../src/core/receipt.js';

const config = withLearnerAdded(
  { clusterId: 'c', epoch: 1, voters: ['A', 'B', 'C'].map((peerId) => ({ peerId, addrs: [] })), learners: [], removed: [], previousVoters: [] },
  { peerId: 'L', addrs: [] },
);
const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const first = applyWrite(EMPTY_RECORD, {}, { actor: 'A', counter: 1 }, v('1'), { wallMs: 1, logical: 0 });
const second = applyWrite(first, first.context, { actor: 'A', counter: 2 }, v('2'), { wallMs: 2, logical: 0 });
const concurrent = applyWrite(first, first.context, { actor: 'B', counter: 1 }, v('x'), { wallMs: 2, logical: 0 });

describe('receiptOf', () => {
  it('counts the voters holding the newest state; older copies and silent replicas do not count', () => {
    const r = receiptOf(config, [
      { peer: 'A', state: 'replied', record: second },
      { peer: 'B', state: 'replied', record: first },
      { peer: 'C', state: 'unreachable', record: undefined },
      { peer: 'L', state: 'replied', record: second },
    ]);
    expect(r.votersHolding).toBe(1);
    expect(r.quorum).toBe(2);
    expect(r.atQuorum).toBe(false);
    expect(r.everywhere).toBe(false);
    expect(r.replicas.map((x) => [x.peer, x.role, x.holdsCurrent])).toEqual([
      ['A', 'voter', true],
      ['B', 'voter', false],
      ['C', 'voter', null],
      ['L', 'learner', true],
    ]);
  });

  it('the current state of concurrent writes is both siblings: a replica with one of them does not hold it', () => {
    const r = receiptOf(config, [
      { peer: 'A', state: 'replied', record: second },
      { peer: 'B', state: 'replied', record: concurrent },
      { peer: 'C', state: 'replied', record: undefined },
      { peer: 'L', state: 'silent', record: undefined },
    ]);
    expect(r.current?.siblings).toHaveLength(2);
    expect(r.votersHolding).toBe(0);
  });

  it('reports nothing current when no replica has the key', () => {
    const r = receiptOf(config, [{ peer: 'A', state: 'replied', record: undefined }]);
    expect(r.current).toBeUndefined();
    expect(r.atQuorum).toBe(false);
  });
});

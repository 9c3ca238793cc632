// A member forges a record for a key that covers ANOTHER writer's dots far ahead of what that writer issued (only
// the writer knows its counter). Replicas that take it would see that writer's next writes to the key as
// superseded and drop them; they used to acknowledge them anyway, so the writer's client was told "written" for
// a value no replica but the writer kept. A replica now acknowledges a write only when it holds the write's own
// sibling (src/core/serving.ts onWrite): the forgery can make the writer's writes to that key fail (a member can
// deny service, docs/security.md), never make one acknowledged and lost.
import { describe, expect, it } from 'vitest';
import type { VersionedRecord } from '../../src/core/record.js';
import { DOT_COUNTER_MAX } from '../../src/core/record.js';
import { Net, seats, text } from '../core/seat-net.js';

const config = seats(1, [['A', 'sA'], ['B', 'sB'], ['C', 'sC']]);
const A_WRITER = 'A@sA'; // the writer name seat-net gives A's dots

function threeDevices(): Net {
  const net = new Net();
  for (const [id, store] of [['A', 'sA'], ['B', 'sB'], ['C', 'sC']] as const) net.add(id, store, config);
  return net;
}

/** B hands C (as a read repair) a record for `key` claiming to have seen A's writes up to DOT_COUNTER_MAX. */
function forgeAtC(net: Net, key: string): void {
  const b = net.dev('B');
  const forged: VersionedRecord = { context: { [A_WRITER]: DOT_COUNTER_MAX, B: 1 }, siblings: [{ dot: { actor: 'B', counter: 1 }, value: new TextEncoder().encode('forged'), hlc: { wallMs: 1, logical: 0 } }] };
  const c = net.dev('C');
  net.exec(c, c.core.step(b.id, { type: 'repair', epoch: 1, key, record: forged }, c, 0));
  net.run();
}

describe('a record forged to cover another writer far ahead', () => {
  it('does not make that writer\'s next write acknowledged by a replica that drops it', () => {
    const net = threeDevices();
    forgeAtC(net, 'k');
    net.down.add('B'); // the forger says nothing more: the write needs C's ack for w=all, and A's plus C's for quorum
    const all = net.write('A', 'k', 'real', 'all');
    expect(all).toMatchObject({ type: 'failed' }); // before the fix: { type: 'written', acks: 2 } with C holding no 'real'
    expect(text(net.dev('C').records.get('k'))).not.toContain('real');
    const quorum = net.write('A', 'k', 'again', 'quorum');
    expect(quorum).toMatchObject({ type: 'failed' });
  });

  it('leaves honest writes as they were: every replica holding the write acknowledges it', () => {
    const net = threeDevices();
    expect(net.write('A', 'k', 'v1', 'all')).toMatchObject({ type: 'written', acks: 3 });
    expect(net.write('B', 'k', 'v2', 'all')).toMatchObject({ type: 'written', acks: 3 });
    for (const id of ['A', 'B', 'C']) expect(text(net.dev(id).records.get('k'))).toContain('v2');
  });
});

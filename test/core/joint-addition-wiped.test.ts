// A voter being added whose store is lost before its admission is finalized (it was approved with the store it
// named when it first asked, but had been wiped meanwhile, or it was wiped during its data sync), while one
// previous voter loses its store too. Found by the simulator (seed 900090, wipes of unsettled devices allowed:
// flags takeoverAfterRestart,finalizeConflict,hintClockStep,acceptedFinalize): epoch 4 joint for ever.
//
// Scenario (voters A, B, C; D being added):
//  1. the joint configuration adds D on store sD1 (epoch 2); D's store sD1 is lost (D comes back on sD2);
//  2. C loses its store too (sC2): of the four joint voters, A and B are left on their seats' stores.
//  3. Finalizing needs 3 of the 4 joint voters (C and D are unseated): impossible. Abandoning the addition
//     (withJointAborted) needs them too. Re-seating C is refused during another change's joint phase, and
//     giving D's seat to sD2 was refused (withSeatReplaced re-targets only a joint phase that re-seats).
//  Nothing can ever end the joint phase: C and D stay unseated for good, although only one member (C) of the
//  three-voter cluster lost its storage.
//  The new store of the voter being added is the same case as a re-seated store wiped again: the joint phase
//  goes on for the newest store, with D's lost acceptor left out of the slot's quorum (configQuorum).
import { describe, expect, it } from 'vitest';
import { finalized, isJoint, withSeatReplaced, withVoterAdded } from '../../src/core/membership.js';
import type { ClientResult } from '../../src/core/replica.js';
import { Net, seats, text, CLAIMED } from './seat-net.js';

describe('a voter being added loses its store during its joint phase while a previous voter loses its own', () => {
  it('the joint phase goes on for the added device\'s new store, then the wiped previous voter is re-seated', () => {
    const net = new Net();
    const config1 = seats(1, [['A', 'sA'], ['B', 'sB'], ['C', 'sC1']]);
    for (const [id, store] of [['A', 'sA'], ['B', 'sB'], ['C', 'sC1']] as const) net.add(id, store, config1);
    net.down.add('B');
    expect(net.write('A', 'y', 'y1')).toMatchObject({ type: 'written' }); // on A and C only
    net.down.delete('B');

    // 1. D admitted on sD1 (joint epoch 2), but D runs on sD2 now.
    net.down.add('D');
    expect(net.propose('A', withVoterAdded(config1, { peerId: 'D', addrs: [], store: 'sD1' }))).toMatchObject({ type: 'configCommitted' });
    net.run();
    net.down.delete('D');
    const joint = net.dev('A').core.config;
    expect(isJoint(joint)).toBe(true);
    net.wipe('D', 'sD2');
    net.announce('A', 'D', joint);
    // 2. C loses its store.
    net.wipe('C', 'sC2');
    net.announce('A', 'C', joint);
    expect(net.dev('C').core.seated()).toBe(false);
    expect(net.dev('D').core.seated()).toBe(false);
    // Finalizing cannot work: 2 of the 4 joint voters are seated.
    expect(net.propose('A', finalized(joint))).toMatchObject({ type: 'failed' });

    // 3. D asks to join with sD2: its seat goes to sD2, still joint (A and B decide: D's old acceptor is gone).
    expect(net.propose('A', withSeatReplaced(net.dev('A').core.config, 'D', 'sD2', [], CLAIMED))).toMatchObject({ type: 'configCommitted' });
    net.run();
    expect(net.dev('D').core.seated()).toBe(true);
    expect(net.sync('A')).toMatchObject({ type: 'synced' });
    expect(text(net.dev('D').records.get('y'))).toEqual(['y1']);
    expect(net.propose('A', finalized(net.dev('A').core.config))).toMatchObject({ type: 'configCommitted' });
    net.run();
    // 4. Then C gets its seat back the ordinary way.
    const done = net.dev('A').core.config;
    expect(isJoint(done)).toBe(false);
    expect(net.propose('A', withSeatReplaced(done, 'C', 'sC2', [], CLAIMED))).toMatchObject({ type: 'configCommitted' });
    net.run();
    expect(net.sync('A')).toMatchObject({ type: 'synced' });
    expect(net.propose('A', finalized(net.dev('A').core.config))).toMatchObject({ type: 'configCommitted' });
    net.run();
    expect(['A', 'B', 'C', 'D'].every((id) => net.dev(id).core.seated())).toBe(true);
    // y, acknowledged by A and C's lost store, is on a majority of the final seats: A down, B, C and D answer.
    net.down.add('A');
    const r = net.read('C', 'y');
    expect(text((r as Extract<ClientResult, { type: 'read' }>).record)).toEqual(['y1']);
  });
});

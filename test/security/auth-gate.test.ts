// Membership is the authority for every replica message (issue 12, critical finding): a device that holds the
// cluster key but is not a member of the configuration (a device waiting for approval, a removed device with a
// new peer.key) gets no data, no acknowledgement and no configuration, and nothing it sends changes anything.
// ReplicaCores on the synchronous network of test/core/seat-net.ts.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { EMPTY_RECORD, applyWrite } from '../../src/core/record.js';
import type { Action } from '../../src/core/replica.js';
import { Net, seats } from '../core/seat-net.js';

const enc = new TextEncoder();

function twoVoters(): { net: Net; config: MembershipConfig } {
  const net = new Net();
  const config = seats(3, [['A', 'sA'], ['B', 'sB']]);
  net.add('A', 'sA', config);
  net.add('B', 'sB', config);
  expect(net.write('A', 'secret', 's1')).toMatchObject({ type: 'written', acks: 2 });
  return { net, config };
}

/** The forged configuration of the finding: epoch + 1000, the attacker its only voter, both real voters removed. */
function forged(config: MembershipConfig): MembershipConfig {
  return { ...config, epoch: config.epoch + 1000, voters: [{ peerId: 'X', addrs: [], store: 'sX' }], learners: [], removed: ['A', 'B'], previousVoters: [] };
}

const record = applyWrite(EMPTY_RECORD, {}, { actor: 'X', counter: 1 }, enc.encode('evil'), { wallMs: 1, logical: 0 });

/** Everything a device sends to X in `actions` (directly, or once something is durable). */
function toX(actions: readonly Action[]): Message[] {
  const out: Message[] = [];
  for (const a of actions) {
    if (a.type === 'send' && a.to === 'X') out.push(a.msg);
    if ('then' in a && a.then !== undefined && a.then.to === 'X') out.push(a.then.msg);
  }
  return out;
}

describe('a key holder that is not a member', () => {
  it('cannot install a forged configuration (epoch + 1000, itself the only voter, the voters removed)', () => {
    const { net, config } = twoVoters();
    const bad = forged(config);
    for (const id of ['A', 'B']) {
      const d = net.dev(id);
      const out = d.core.step('X', { type: 'config', epoch: bad.epoch, config: bad }, d, 0);
      expect(out).toEqual([]);
      expect(d.core.config).toEqual(config);
      expect(d.core.seated()).toBe(true);
    }
    // Nor through a stale reply, a Paxos refusal or a prepare carrying it as its base.
    const a = net.dev('A');
    const carriers: Message[] = [
      { type: 'stale', opId: 1, epoch: bad.epoch, config: bad },
      { type: 'configPromise', opId: 1, epoch: bad.epoch, ballot: { round: 1, proposer: 'A' }, ok: false, accepted: undefined, promised: undefined, config: bad },
      { type: 'configAccepted', opId: 1, epoch: bad.epoch, ballot: { round: 1, proposer: 'A' }, ok: false, promised: undefined, config: bad },
      { type: 'configPrepare', opId: 1, epoch: bad.epoch, ballot: { round: 99, proposer: 'X' }, config: bad },
    ];
    for (const msg of carriers) expect(a.core.step('X', msg, a, 0)).toEqual([]);
    expect(a.core.config).toEqual(config);
    // The cluster still writes at quorum.
    expect(net.write('A', 'k', 'v')).toMatchObject({ type: 'written', acks: 2 });
  });

  it('gets no data and no acknowledgement, whatever epoch it claims (old, current, current + 1)', () => {
    const { net, config } = twoVoters();
    const a = net.dev('A');
    for (const epoch of [1, config.epoch, config.epoch + 1]) {
      const requests: Message[] = [
        { type: 'read', opId: 7, epoch, key: 'secret' },
        { type: 'write', opId: 8, epoch, key: 'evil', record },
        { type: 'repair', epoch, key: 'evil', record },
        { type: 'transferRequest', opId: 9, epoch },
        { type: 'transfer', opId: 10, epoch, seq: 1, records: [{ key: 'evil', record }], done: true },
        { type: 'configAccept', opId: 11, epoch, ballot: { round: 99, proposer: 'X' }, config: forged(config) },
      ];
      for (const msg of requests) {
        const out = a.core.step('X', msg, a, 0);
        expect(toX(out)).toEqual([]);
        expect(out.filter((x) => x.type === 'persist' || x.type === 'persistAcceptor' || x.type === 'persistConfig')).toEqual([]);
      }
    }
    expect(a.records.has('evil')).toBe(false);
    expect(a.core.acceptorState.promised.round).toBe(0);
  });

  it('is never told the configuration (no stale answer, no announcement for an old epoch in its heartbeat)', () => {
    const { net } = twoVoters();
    const a = net.dev('A');
    expect(a.core.peerEpoch('X', 1, 0)).toEqual([]);
    expect(a.core.step('X', { type: 'writeAck', opId: 1, epoch: 1 }, a, 0)).toEqual([]);
    expect(a.core.step('X', { type: 'read', opId: 2, epoch: 1, key: 'secret' }, a, 0)).toEqual([]);
  });

  it('cannot count as a replica in a read or write of the members', () => {
    const { net } = twoVoters();
    const a = net.dev('A');
    const w = a.core.write({ key: 'k', value: enc.encode('v'), context: undefined, level: 'all', dot: { actor: 'A@sA', counter: 99 }, nowMs: 0, physicalMs: 5 }, a);
    net.exec(a, w.actions); // queued: A's own ack and B's are still to come
    // X acknowledges the write it never received: not counted (only members' acks count).
    expect(a.core.step('X', { type: 'writeAck', opId: w.opId, epoch: 3 }, a, 0)).toEqual([]);
    net.run();
    expect(a.results.find((r) => r.opId === w.opId)).toMatchObject({ type: 'written', acks: 2 });
  });

  it('a device waiting to join adopts only a configuration that names it, from the member it asked', () => {
    const { net, config } = twoVoters();
    const c = net.add('C', 'sC', { clusterId: '', epoch: 0, voters: [], learners: [], removed: [], previousVoters: [] });
    const admitted: MembershipConfig = { ...config, epoch: 4, voters: [...config.voters, { peerId: 'C', addrs: [], store: 'sC' }], previousVoters: ['A', 'B'] };
    // A stranger's configuration (or one that does not name C) is not taken, so it cannot trap C in a fake cluster.
    expect(c.core.step('X', { type: 'config', epoch: 4, config: admitted }, c, 0)).toEqual([]);
    expect(c.core.step('A', { type: 'config', epoch: 4, config: admitted }, c, 0)).toEqual([]); // C did not ask A
    c.core.admissionFrom('A');
    expect(c.core.step('A', { type: 'config', epoch: 1000, config: forged(config) }, c, 0)).toEqual([]);
    expect(c.core.epoch).toBe(0);
    net.exec(c, c.core.step('A', { type: 'config', epoch: 4, config: admitted }, c, 0));
    expect(c.core.epoch).toBe(4);
    expect(c.core.seated()).toBe(true);
  });
});

// A device adopts a newer configuration only with proof that the previous voters chose it (issue 12): each
// committed configuration carries the Ed25519 accept signatures of a Paxos quorum of the previous epoch's voters
// at one ballot. Real peer keys (src/node/config-auth.ts) on the ReplicaCores of test/core/seat-net.ts: a chain
// of membership changes is verified by a device that was offline through all of them, from any device; forged
// or short proofs change nothing, whoever sends them.
import { describe, expect, it } from 'vitest';
import { CHAIN_SENT_MAX, acceptPayload, genesisProblem, proofProblem, signSeatClaim, withGenesisProof } from '../../src/core/config-proof.js';
import {
  type MembershipConfig,
  NO_CONFIG,
  configsEqual,
  foundingConfig,
  withLearnerAdded,
  withMemberRemoved,
  withSeatReplaced,
  withVoterAdded,
} from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { ReplicaCore } from '../../src/core/replica.js';
import { type Device, Net, TIMEOUT, seats, commit, voterChange } from '../core/seat-net.js';
import { type Key, newKeys } from '../helpers/keys.js';

/** Delivers `actions`' sends and runs the network to quiescence. */
function deliver(net: Net, d: Device, actions: ReturnType<ReplicaCore['peerEpoch']>): void {
  net.exec(d, actions);
  net.run();
}

describe('configuration proofs', () => {
  it('a device offline through several membership changes verifies the whole chain, from any device', async () => {
    const [a, b, o, d, e] = await newKeys(5);
    const net = new Net();
    const start = seats(1, [[a!.id, 'sA'], [b!.id, 'sB'], [o!.id, 'sO']]);
    for (const [k, store] of [[a!, 'sA'], [b!, 'sB'], [o!, 'sO']] as const) net.add(k.id, store, start, { auth: k.auth });
    expect(net.write(a!.id, 'k', 'v1')).toMatchObject({ type: 'written' });
    net.down.add(o!.id);

    // D joins as a voter (joint, sync, final), E as a learner, B is removed (joint, sync, final).
    const dev = net.add(d!.id, 'sD', NO_CONFIG, { auth: d!.auth });
    dev.core.admissionFrom(a!.id);
    voterChange(net, a!.id, withVoterAdded(net.dev(a!.id).core.config, { peerId: d!.id, addrs: [], store: 'sD' }));
    const edev = net.add(e!.id, 'sE', NO_CONFIG, { auth: e!.auth });
    edev.core.admissionFrom(a!.id);
    commit(net, a!.id, withLearnerAdded(net.dev(a!.id).core.config, { peerId: e!.id, addrs: [], store: 'sE' }));
    voterChange(net, a!.id, withMemberRemoved(net.dev(a!.id).core.config, b!.id));
    const latest = net.dev(a!.id).core.config;
    expect(latest.epoch).toBe(6);
    expect(latest.proof?.signatures.length).toBeGreaterThanOrEqual(2);

    // O comes back at epoch 1. D, a voter O has never heard of (not a member of O's configuration), tells it.
    net.down.delete(o!.id);
    const odev = net.dev(o!.id);
    expect(odev.core.epoch).toBe(1);
    const told = net.dev(d!.id).core.peerEpoch(o!.id, 1, 0);
    const tell = told.find((x) => x.type === 'send' && x.msg.type === 'config');
    expect(tell?.type === 'send' && tell.msg.type === 'config' ? tell.msg.chain?.map((c) => c.epoch) : undefined).toEqual([2, 3, 4, 5]);
    deliver(net, net.dev(d!.id), told);
    expect(odev.core.epoch).toBe(6);
    expect(configsEqual(odev.core.config, latest)).toBe(true);
    expect(odev.core.seated()).toBe(true);
    // And it serves again: a quorum write through O counts A and D.
    expect(net.write(o!.id, 'k2', 'v2')).toMatchObject({ type: 'written', required: 2 });
  });

  it('a restarted device keeps the chain (its history) and still proves every step to a device far behind', async () => {
    const [a, o] = await newKeys(2);
    // O is a learner of a one-voter cluster; twenty learner changes happen while it is away.
    const a1 = new Net();
    const solo = seats(1, [[a!.id, 'sA']]);
    const ad = a1.add(a!.id, 'sA', solo, { auth: a!.auth });
    const learners = await newKeys(10);
    const oCfg = withLearnerAdded(solo, { peerId: o!.id, addrs: [], store: 'sO' });
    a1.down.add(o!.id);
    commit(a1, a!.id, oCfg);
    const od = a1.add(o!.id, 'sO', oCfg, { auth: o!.auth });
    for (const l of learners) a1.down.add(l.id); // learners that never come up: only the configurations matter
    for (const l of learners) {
      commit(a1, a!.id, withLearnerAdded(ad.core.config, { peerId: l.id, addrs: [], store: `s${l.id}` }));
      commit(a1, a!.id, withMemberRemoved(ad.core.config, l.id));
    }
    expect(ad.core.epoch).toBe(22);
    a1.down.delete(o!.id);

    // A restarts: a new core from what it persisted (configuration, history).
    const restarted = new ReplicaCore({ self: a!.id, config: ad.core.config, history: ad.core.configHistory, requestTimeoutMs: TIMEOUT, opIdBase: 9e9, store: 'sA', auth: a!.auth });
    const first = restarted.peerEpoch(o!.id, 2, 0);
    const msg = (first[0] as { msg: Extract<Message, { type: 'config' }> }).msg;
    expect(msg.chain?.length).toBe(CHAIN_SENT_MAX - 1); // one message carries at most CHAIN_SENT_MAX configurations
    for (const m of [msg]) a1.exec(od, od.core.step(a!.id, m, od, 0));
    expect(od.core.epoch).toBe(2 + CHAIN_SENT_MAX);
    // O speaks again from its new epoch: told the rest once RETELL has passed.
    const second = restarted.peerEpoch(o!.id, od.core.epoch, 2_000);
    for (const x of second) if (x.type === 'send') a1.exec(od, od.core.step(a!.id, x.msg, od, 0));
    expect(od.core.epoch).toBe(22);
    expect(configsEqual(od.core.config, ad.core.config)).toBe(true);
  });

  it('refuses forged and short proofs, whoever sends them, and changes nothing', async () => {
    const [a, b, c, x] = await newKeys(4);
    const net = new Net();
    const start = seats(1, [[a!.id, 'sA'], [b!.id, 'sB'], [c!.id, 'sC']]);
    for (const [k, store] of [[a!, 'sA'], [b!, 'sB'], [c!, 'sC']] as const) net.add(k.id, store, start, { auth: k.auth });
    const ad = net.dev(a!.id);
    const takeover = (epoch: number): MembershipConfig => ({ ...start, epoch, voters: [{ peerId: b!.id, addrs: [], store: 'sB' }], removed: [a!.id, c!.id] });
    const signed = (config: MembershipConfig, round: number, ...by: Key[]): MembershipConfig => {
      const ballot = { round, proposer: b!.id };
      return { ...config, proof: { ballot, signatures: by.map((k) => ({ peerId: k.id, signature: k.auth.sign(acceptPayload(config, ballot)) })) } };
    };
    const next = takeover(2);
    const ballot2 = { round: 2, proposer: b!.id };
    const forgeries: Array<[string, MembershipConfig]> = [
      ['epoch + 1000 signed by a member alone', signed(takeover(1001), 1, b!)],
      ['the next epoch signed by one of three voters', signed(next, 1, b!)],
      ['the next epoch signed by a member and a non-member', signed(next, 1, b!, x!)],
      ['the next epoch with a signature repeated', { ...next, proof: { ballot: ballot2, signatures: [0, 1].map(() => ({ peerId: b!.id, signature: b!.auth.sign(acceptPayload(next, ballot2)) })) } }],
      ['a signature claimed for another voter', { ...next, proof: { ballot: ballot2, signatures: [b!, c!].map((k) => ({ peerId: k.id, signature: b!.auth.sign(acceptPayload(next, ballot2)) })) } }],
      // Accepts at two ballots do not make a value chosen (another may be chosen between them).
      ['accepts at two ballots', { ...next, proof: { ballot: ballot2, signatures: [{ peerId: b!.id, signature: b!.auth.sign(acceptPayload(next, ballot2)) }, { peerId: c!.id, signature: c!.auth.sign(acceptPayload(next, { round: 3, proposer: b!.id })) }] } }],
      ['a quorum\'s proof of another value', { ...signed(next, 1, b!, c!), voters: [{ peerId: x!.id, addrs: [], store: 'sX' }] }],
      ['no proof at all', next],
    ];
    let nowMs = 0;
    for (const [what, forged] of forgeries) {
      for (const from of [b!.id, x!.id]) {
        nowMs += 1_000; // (a non-member's configurations are checked at most ten times a second)
        const out = ad.core.step(from, { type: 'config', epoch: forged.epoch, config: forged }, ad, nowMs);
        expect(out, `${what} from ${from === x!.id ? 'a non-member' : 'a member'}`).toEqual([]);
      }
      // Nor as a stale reply or a Paxos refusal from a member.
      expect(ad.core.step(b!.id, { type: 'stale', opId: 1, epoch: forged.epoch, config: forged }, ad, 0).some((y) => y.type === 'persistConfig')).toBe(false);
      expect(ad.core.config).toEqual(start);
    }
    // The genuine quorum (B and C at one ballot) is proof enough, from anyone; but a non-member's configuration
    // is checked only once per 100 ms (all non-members together), so forgeries cannot make us spend CPU.
    const genuine = signed(next, 4, b!, c!);
    expect(proofProblem(start, genuine, a!.auth)).toBeUndefined();
    nowMs += 1_000;
    expect(ad.core.step(x!.id, { type: 'config', epoch: 2, config: forgeries[1]![1] }, ad, nowMs)).toEqual([]);
    expect(ad.core.step(x!.id, { type: 'config', epoch: 2, config: genuine }, ad, nowMs + 50)).toEqual([]); // not checked
    net.exec(ad, ad.core.step(x!.id, { type: 'config', epoch: 2, config: genuine }, ad, nowMs + 100));
    expect(ad.core.epoch).toBe(2);
  });

  it('a two-voter cluster re-seats a wiped voter alone, and that proof (one of the other voters) verifies', async () => {
    const [a, w, l] = await newKeys(3);
    const net = new Net();
    const start = { ...seats(1, [[a!.id, 'sA'], [w!.id, 'sW']]), learners: [{ peerId: l!.id, addrs: [], store: 'sL' }] };
    net.add(a!.id, 'sA', start, { auth: a!.auth });
    net.add(l!.id, 'sL', start, { auth: l!.auth });
    net.down.add(l!.id);
    net.add(w!.id, 'sW', start, { auth: w!.auth });
    const wd = net.wipe(w!.id, 'sW2', { auth: w!.auth });
    expect(wd.core.epoch).toBe(0);
    // W asks with its claim on its new store (its peer key survived the wipe), signed against epoch 1.
    voterChange(net, a!.id, withSeatReplaced(net.dev(a!.id).core.config, w!.id, 'sW2', [], signSeatClaim(w!.auth, w!.id, 'sW', 'sW2', 1)));
    expect(wd.core.seated()).toBe(true);
    // The learner, away through it, verifies both steps: the joint one proven by A alone (W's old store gone).
    net.down.delete(l!.id);
    const ld = net.dev(l!.id);
    deliver(net, net.dev(a!.id), net.dev(a!.id).core.peerEpoch(l!.id, 1, 0));
    expect(ld.core.epoch).toBe(3);
  });

  it('the smaller quorum of a re-seat proves a re-seat only: one voter of two cannot sign anything else with it', async () => {
    const [a, b, x] = await newKeys(3);
    const start = seats(1, [[a!.id, 'sA'], [b!.id, 'sB']]);
    const reseat = withSeatReplaced(start, a!.id, 'sA-forged', [], signSeatClaim(a!.auth, a!.id, 'sA', 'sA-forged', 1));
    const sign = (config: MembershipConfig): MembershipConfig => {
      const ballot = { round: 1, proposer: b!.id };
      return { ...config, proof: { ballot, signatures: [{ peerId: b!.id, signature: b!.auth.sign(acceptPayload(config, ballot)) }] } };
    };
    // B alone may re-seat A on A's claim (the two-voter rule: A's old store is gone and never votes in this slot
    // again), and on nothing less: without the claim a re-seat is an ordinary change that needs both voters ...
    expect(proofProblem(start, sign(reseat), a!.auth)).toBeUndefined();
    expect(proofProblem(start, sign(withSeatReplaced(start, a!.id, 'sA-forged', [])), a!.auth)).toMatch(/1 of the 2/);
    // ... but not re-seat A and add itself a partner, or remove someone, under cover of it.
    const withX = { ...reseat, voters: [...reseat.voters, { peerId: x!.id, addrs: [], store: 'sX' }] };
    expect(proofProblem(start, sign(withX), a!.auth)).toMatch(/not a replacement/);
    const removing = { ...reseat, removed: [x!.id] };
    expect(proofProblem(start, sign(removing), a!.auth)).toMatch(/not a replacement/);
  });

  it('the founding configuration is signed by its founder', async () => {
    const [f, x] = await newKeys(2);
    const genesis = withGenesisProof(foundingConfig('c1', { peerId: f!.id, addrs: [], store: 's' }), f!.id, f!.auth);
    expect(genesisProblem(genesis, x!.auth)).toBeUndefined();
    expect(genesisProblem({ ...genesis, clusterId: 'c2' }, x!.auth)).toBe('bad founder signature');
    const other = withGenesisProof(foundingConfig('c1', { peerId: f!.id, addrs: [], store: 's' }), x!.id, x!.auth);
    expect(genesisProblem(other, f!.auth)).toBe('no founder proof');
  });
});

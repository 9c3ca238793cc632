// A small synchronous network of ReplicaCores that executes their actions like the runtime does (persist, then
// deliver the acknowledgement; sends in order; unreachable devices fail the send), with stores that carry a
// store id and can be wiped. Shared by the seat tests (test/core/seats*.test.ts).
import { expect } from 'vitest';
import { type MembershipConfig, NO_CONFIG, finalized } from '../../src/core/membership.js';
import type { KeyedRecord, Message } from '../../src/core/messages.js';
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import type { VersionedRecord } from '../../src/core/record.js';
import { type Action, type ClientResult, type LocalView, ReplicaCore, type ReplicaCoreOptions } from '../../src/core/replica.js';

export const TIMEOUT = 1000;
/**
 * The seat claim of a device asking for its seat on a new store, for cores without auth (they check no
 * signature): it marks a re-seat as the device's own request, which the smaller quorum of configQuorum decides.
 */
export const CLAIMED = { from: '', since: 0, signature: 'unchecked' } as const;
export const text = (r: VersionedRecord | undefined): string[] =>
  (r?.siblings ?? []).filter((s) => s.value !== null).map((s) => new TextDecoder().decode(s.value ?? new Uint8Array()));

export function seats(epoch: number, members: ReadonlyArray<[string, string]>): MembershipConfig {
  return {
    clusterId: 'c1',
    epoch,
    voters: members.map(([peerId, store]) => ({ peerId, addrs: [], store })),
    learners: [],
    removed: [],
    previousVoters: [],
  };
}

export class Device implements LocalView {
  static created = 0;
  readonly records = new Map<string, VersionedRecord>();
  readonly core: ReplicaCore;
  readonly results: ClientResult[] = [];
  counter = 0;

  constructor(
    readonly id: string,
    readonly storeId: string,
    config: MembershipConfig,
    extra: Partial<ReplicaCoreOptions> = {},
  ) {
    this.core = new ReplicaCore({ self: id, config, requestTimeoutMs: TIMEOUT, opIdBase: (Device.created++) * 1_000_000, store: storeId, ...extra });
  }

  get(key: string): VersionedRecord | undefined {
    return this.records.get(key);
  }

  scan(after: string | undefined, limit: number): KeyedRecord[] {
    const keys = [...this.records.keys()].filter((k) => after === undefined || k > after).sort();
    return keys.slice(0, limit).map((key) => ({ key, record: this.records.get(key)! }));
  }

  keyCount(): number {
    return this.records.size;
  }
}

/** Delivers messages in order; a device in `down` is unreachable (the sender is told, as a failed send). */
export class Net {
  readonly devices = new Map<string, Device>();
  readonly down = new Set<string>();
  private readonly queue: Array<{ from: string; to: string; msg: Message }> = [];

  add(id: string, store: string, config: MembershipConfig, extra: Partial<ReplicaCoreOptions> = {}): Device {
    const device = new Device(id, store, config, extra);
    this.devices.set(id, device);
    return device;
  }

  dev(id: string): Device {
    const d = this.devices.get(id);
    if (d === undefined) throw new Error(`no device ${id}`);
    return d;
  }

  /** The device lost its storage: same peer ID, a new empty store, no configuration. */
  wipe(id: string, newStore: string, extra: Partial<ReplicaCoreOptions> = {}): Device {
    const device = this.add(id, newStore, NO_CONFIG, extra);
    // Its join loop asks the members to join (the runtime's MembershipService.requestJoin).
    for (const other of this.devices.keys()) if (other !== id) device.core.admissionFrom(other);
    return device;
  }

  exec(d: Device, actions: readonly Action[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'persist':
          d.records.set(a.key, a.record);
          if (a.then !== undefined) this.queue.push({ from: d.id, to: a.then.to, msg: a.then.msg });
          break;
        case 'persistConfig':
        case 'persistAcceptor':
        case 'flush':
          if (a.then !== undefined) this.queue.push({ from: d.id, to: a.then.to, msg: a.then.msg });
          break;
        case 'send':
          this.queue.push({ from: d.id, to: a.to, msg: a.msg });
          break;
        case 'reply':
          d.results.push(a.result);
          break;
        default:
          break; // hints and transfer progress: not modelled here
      }
    }
  }

  run(): void {
    for (let steps = 0; this.queue.length > 0; steps++) {
      expect(steps).toBeLessThan(100_000);
      const { from, to, msg } = this.queue.shift()!;
      const sender = this.devices.get(from);
      if (sender === undefined || this.down.has(from)) continue;
      if (this.down.has(to) && to !== from) {
        this.exec(sender, sender.core.sendFailed(to, msg, sender, 0));
        continue;
      }
      const receiver = this.dev(to);
      this.exec(receiver, receiver.core.step(from, msg, receiver, 0));
    }
  }

  result(d: Device, opId: number): ClientResult {
    this.run();
    const r = d.results.find((x) => x.opId === opId);
    if (r !== undefined) return r;
    this.exec(d, d.core.tick(TIMEOUT * 10, d));
    this.run();
    const late = d.results.find((x) => x.opId === opId);
    if (late === undefined) throw new Error(`operation ${opId} on ${d.id} did not finish`);
    return late;
  }

  write(id: string, key: string, value: string | null, level: ConsistencyLevel = 'quorum'): ClientResult {
    const d = this.dev(id);
    d.counter += 1;
    const request = {
      key,
      value: value === null ? null : new TextEncoder().encode(value),
      context: undefined,
      level,
      dot: { actor: `${d.id}@${d.storeId}`, counter: d.counter },
      nowMs: 0,
      physicalMs: d.counter,
    };
    const { opId, actions } = d.core.write(request, d);
    this.exec(d, actions);
    return this.result(d, opId);
  }

  read(id: string, key: string, level: ConsistencyLevel = 'quorum'): ClientResult {
    const d = this.dev(id);
    const { opId, actions } = d.core.read({ key, level, nowMs: 0 }, d);
    this.exec(d, actions);
    return this.result(d, opId);
  }

  propose(id: string, next: MembershipConfig): ClientResult {
    const d = this.dev(id);
    const { opId, actions } = d.core.proposeConfig(next, 0, d);
    this.exec(d, actions);
    return this.result(d, opId);
  }

  sync(id: string, targets?: readonly string[]): ClientResult {
    const d = this.dev(id);
    const { opId, actions } = d.core.sync(0, d, targets);
    this.exec(d, actions);
    return this.result(d, opId);
  }

  /** `to` hears of `config` (gossip, a heartbeat's answer) from `from`. */
  announce(from: string, to: string, config: MembershipConfig): void {
    this.queue.push({ from, to, msg: { type: 'config', epoch: config.epoch, config } });
    this.run();
  }
}

/** Commits `next` proposed by `proposer`, and runs the network to quiescence. */
export function commit(net: Net, proposer: string, next: MembershipConfig): void {
  expect(net.propose(proposer, next)).toMatchObject({ type: 'configCommitted' });
  net.run();
}

/** A voter change the way MembershipService makes it: joint configuration, data sync, finalize. */
export function voterChange(net: Net, proposer: string, next: MembershipConfig): void {
  commit(net, proposer, next);
  expect(net.sync(proposer)).toMatchObject({ type: 'synced' });
  commit(net, proposer, finalized(net.dev(proposer).core.config));
}

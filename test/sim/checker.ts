// The simulator's god view: it knows every write ever issued and what its client had seen (the true
// happens-before), every purge and every configuration, and checks the replicas' stores against that after
// every step. See INVARIANTS below.
import { type Hlc, hlcCompare } from '../../src/core/hlc.js';
import { type MembershipConfig, configsEqual, isMember, livePreviousVoters, quorumIds, voterIds } from '../../src/core/membership.js';
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import { previousNeeded } from '../../src/core/replica.js';
import { type VersionedRecord, mergeRecords, recordsEqual } from '../../src/core/record.js';
import { type Dot, type VersionVector, covers, dotKey, vvGet } from '../../src/core/vv.js';

export const INVARIANTS = {
  a: '(a) a write acknowledged at w>=majority stays readable at r=quorum, across membership changes and storage wipes: every read quorum a coordinator could still assemble (for every configuration some device works with, from devices not past its epoch that answer reads, i.e. hold their seat) keeps it, a write that saw it, or a purged delete that superseded it',
  b: '(b) the siblings of a record are pairwise concurrent under the true happens-before',
  c: '(c) every dot in a store is a real write of that key (same value and clock); dots are never reused; contexts name only issued dots',
  d: '(d) nothing is dropped unseen: every write a context covers is a sibling of the record or causally followed by one',
  e: '(e) a read at r>=majority returns every write acknowledged at w>=majority before the read began, or a later write that saw it, or the key is gone because a delete that saw it was purged',
  f: '(f) convergence: after healing, every member holds the same record, keeping every write but orphans (and those a purged delete superseded)',
  g: '(g) no two configurations committed for the same epoch differ (membership decisions never fork)',
  h: '(h) no delete comes back after a purge: once a tombstone was purged anywhere, no replica that holds its seat (and is not removed) holds, and no read returns, a value that a purged delete superseded',
  i: '(i) a removed device is never re-admitted: no configuration after the one that removed it has it as a member',
  j: '(j) a device whose store does not hold its seat (storage wiped, seat not yet given to the new store) acknowledges no write or data, answers no read, casts no membership vote, serves no data stream and takes no part in anti-entropy',
  l: '(l) liveness: once faults stop, every join and seat replacement finishes and every member adopts the final configuration within a bounded virtual time; background work (hinted handoff) does not loop',
  x: '(x) the core or the simulated runtime threw',
} as const;

export type InvariantId = keyof typeof INVARIANTS;

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantId,
    detail: string,
  ) {
    super(`${INVARIANTS[invariant]}\n  violated: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

export interface WriteInfo {
  readonly id: string;
  readonly dot: Dot;
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly hlc: Hlc;
  /** Dot keys of every write this one causally follows: what its client had seen, transitively. */
  readonly hist: ReadonlySet<string>;
  readonly issuedAt: number;
  readonly coordinator: string;
  /** The `required` of its 'written' reply, once acknowledged. */
  ackedRequired: number | undefined;
  /** Acknowledged by at least a majority of its coordinator's voters (must survive everything). */
  quorumAcked: boolean;
  ackedAt: number | undefined;
  /** Its coordinator crashed before its own copy was durable: lost unless it reached another replica. */
  orphaned: boolean;
}

/** What the checker reads from the cluster. */
export interface StoreView {
  readonly nodes: readonly string[];
  /** The configuration a device works with (its durable one while it is down). */
  configOf(node: string): MembershipConfig;
  /** Whether a device answers reads and acknowledges writes (its runtime's store holds its seat). */
  serves(node: string): boolean;
  /** Whether a device's real store holds its seat and it is not removed: it must never show a purged value. */
  participating(node: string): boolean;
  visible(node: string, key: string): VersionedRecord | undefined;
  durable(node: string, key: string): VersionedRecord | undefined;
}

export class GodView {
  private readonly writes = new Map<string, WriteInfo>();
  private readonly byKey = new Map<string, WriteInfo[]>();
  private readonly byCoordinator = new Map<string, WriteInfo[]>();
  private readonly maxCounter = new Map<string, number>();
  /** Every configuration adopted anywhere, by epoch (JSON), for (g). */
  private readonly configsByEpoch = new Map<number, { config: MembershipConfig; node: string }>();
  /** Tombstones purged anywhere, by key: a value a delete of theirs superseded must never come back (h). */
  private readonly purgedByKey = new Map<string, VersionedRecord[]>();
  private dirtyRecords = new Map<string, Set<string>>();
  /** Keys whose durable copies or acknowledged writes changed. */
  private dirtyKeys = new Set<string>();
  now = 0;
  private storeView: StoreView | undefined;

  constructor() {}

  /**
   * (g) A device adopted `config`: it must be the one configuration of its epoch. (i) No configuration has a
   * member that an older one removed.
   */
  configAdopted(node: string, config: MembershipConfig): void {
    if (config.epoch === 0) return;
    // A device that becomes a member must hold nothing a purge superseded: check its records again.
    this.touchNode(node);
    const seen = this.configsByEpoch.get(config.epoch);
    if (seen === undefined) {
      this.configsByEpoch.set(config.epoch, { config, node });
      for (const other of this.configsByEpoch.values()) {
        const [older, newer] = other.config.epoch < config.epoch ? [other.config, config] : [config, other.config];
        if (older.epoch === newer.epoch) continue;
        for (const p of older.removed) {
          if (isMember(newer, p)) this.fail('i', `${p} was removed at epoch ${older.epoch} but is a member again at epoch ${newer.epoch}: ${JSON.stringify(newer)}`);
        }
      }
      return;
    }
    if (!configsEqual(seen.config, config)) {
      this.fail('g', `epoch ${config.epoch}: ${seen.node} adopted ${JSON.stringify(seen.config)} but ${node} adopted ${JSON.stringify(config)}`);
    }
  }

  /** A device purged `key`, whose state was the tombstone `record`. */
  purged(_node: string, key: string, record: VersionedRecord): void {
    push(this.purgedByKey, key, record);
    // Every replica's copy of the key is looked at again: none that takes part may hold a superseded value.
    for (const n of this.view.nodes) this.changed(n, key, false);
    this.dirtyKeys.add(key);
  }

  /** Purges so far (tombstones removed anywhere). */
  get purgeCount(): number {
    let n = 0;
    for (const list of this.purgedByKey.values()) n += list.length;
    return n;
  }

  /** A device lost its storage: its writes that no majority acknowledged may be gone with it. */
  wiped(node: string): void {
    for (const w of this.byCoordinator.get(node) ?? []) w.orphaned = true;
  }

  private touchNode(node: string): void {
    for (const key of this.byKey.keys()) this.changed(node, key, false);
  }

  get configsCommitted(): number {
    return this.configsByEpoch.size;
  }

  /** Connects the checker to the cluster it watches (which itself reports to the checker). */
  attach(view: StoreView): void {
    this.storeView = view;
  }

  private get view(): StoreView {
    if (this.storeView === undefined) throw new Error('GodView.attach() was not called');
    return this.storeView;
  }

  get allWrites(): IterableIterator<WriteInfo> {
    return this.writes.values();
  }

  keysWritten(): string[] {
    return [...this.byKey.keys()].sort();
  }

  /** A coordinator accepted a write: registers it with what its client had seen (sibling dots of a read). */
  writeIssued(coordinator: string, key: string, dot: Dot, value: Uint8Array | null, hlc: Hlc, seen: readonly string[]): void {
    const id = dotKey(dot);
    if (this.writes.has(id)) this.fail('c', `dot ${id} issued twice (by ${coordinator} for ${key})`);
    const hist = new Set<string>();
    for (const s of seen) {
      hist.add(s);
      for (const h of this.writes.get(s)?.hist ?? []) hist.add(h);
    }
    const info: WriteInfo = { id, dot, key, value, hlc, hist, issuedAt: this.now, coordinator, ackedRequired: undefined, quorumAcked: false, ackedAt: undefined, orphaned: false };
    this.writes.set(id, info);
    push(this.byKey, key, info);
    push(this.byCoordinator, coordinator, info);
    this.maxCounter.set(dot.actor, Math.max(this.maxCounter.get(dot.actor) ?? 0, dot.counter));
  }

  /** Acknowledgements a level needs with `voters` voters, by the checker's own arithmetic (not the core's). */
  required(level: ConsistencyLevel, voters: number): number {
    return level === 'one' ? 1 : level === 'quorum' ? majorityOf(voters) : level === 'all' ? voters : level;
  }

  /** A write was acknowledged by a coordinator whose configuration has `voters` voters. */
  writeAcked(dot: Dot, level: ConsistencyLevel, reply: { required: number; acks: number; record: VersionedRecord }, voters: number): void {
    const info = this.writes.get(dotKey(dot));
    if (info === undefined) return this.fail('c', `acknowledged dot ${dotKey(dot)} was never issued`);
    if (!reply.record.siblings.some((s) => dotKey(s.dot) === info.id)) {
      this.fail('c', `'written' reply for ${info.id} does not contain it: ${fmtRecord(reply.record)}`);
    }
    const required = this.required(level, voters);
    if (reply.required !== required || reply.acks < required) {
      this.fail('a', `${info.id} at w=${String(level)} was acknowledged by ${reply.acks} (required ${reply.required}), but needs ${required}`);
    }
    info.ackedRequired = required;
    info.quorumAcked = required >= majorityOf(voters);
    info.ackedAt = this.now;
    this.dirtyKeys.add(info.key);
  }

  /** Dot keys acknowledged at w>=majority on `key` so far (a read starting now must return them). */
  ackedQuorumDots(key: string): string[] {
    return (this.byKey.get(key) ?? []).filter((w) => this.quorumAcked(w)).map((w) => w.id);
  }

  /** A store changed: its visible copy, or also its durable copy (which is what (a) looks at). */
  changed(node: string, key: string, durable: boolean): void {
    let keys = this.dirtyRecords.get(node);
    if (keys === undefined) {
      keys = new Set();
      this.dirtyRecords.set(node, keys);
    }
    keys.add(key);
    if (durable) this.dirtyKeys.add(key);
  }

  /** Something changed which read quorums exist (a configuration adopted, a crash): check every key again. */
  touchAll(): void {
    for (const key of this.byKey.keys()) this.dirtyKeys.add(key);
  }

  /** A node crashed and kept only its durable store: its own writes not durable there are orphans. */
  crashed(node: string): void {
    for (const w of this.byCoordinator.get(node) ?? []) {
      if (w.orphaned) continue;
      const durable = this.view.durable(node, w.key);
      if (durable === undefined || !covers(durable.context, w.dot)) w.orphaned = true;
    }
  }

  /** Checks a read result returned to a client. */
  readReturned(
    key: string,
    level: ConsistencyLevel,
    reply: { record: VersionedRecord | undefined; required: number; replies: number },
    ackedBefore: readonly string[],
    at: string,
    /** The coordinator's voter count (Infinity: a learner's local read, never a quorum read). */
    voters: number,
  ): void {
    const { record } = reply;
    if (record !== undefined) {
      this.checkRecord(record, key, `read result at ${at}`);
      this.checkNotResurrected(record, key, `read result at ${at}`);
    }
    const required = voters === Infinity ? 1 : this.required(level, voters);
    if (reply.required !== required || reply.replies < required) {
      this.fail('e', `read of ${key} at ${at}, r=${String(level)}, answered after ${reply.replies} replies (required ${reply.required}), but needs ${required}`);
    }
    if (required < majorityOf(voters)) return;
    for (const id of ackedBefore) {
      if (!this.keepsOrPurged(record, id)) {
        this.fail('e', `read of ${key} at ${at} (r needs ${required}) lost ${this.describeWrite(id)}: got ${fmtRecord(record)}`);
      }
    }
  }

  /** Runs every invariant over what changed in the last step. */
  checkStep(): void {
    const dirtyRecords = this.dirtyRecords;
    const dirtyKeys = this.dirtyKeys;
    this.dirtyRecords = new Map();
    this.dirtyKeys = new Set();
    for (const [node, keys] of dirtyRecords) {
      for (const key of keys) {
        const visible = this.view.visible(node, key);
        const durable = this.view.durable(node, key);
        if (visible !== undefined) this.checkRecord(visible, key, `${node} (visible)`);
        if (durable !== undefined && durable !== visible) this.checkRecord(durable, key, `${node} (durable)`);
        if (this.purgedByKey.has(key) && this.view.participating(node)) {
          if (visible !== undefined) this.checkNotResurrected(visible, key, `${node} (visible)`);
          if (durable !== undefined && durable !== visible) this.checkNotResurrected(durable, key, `${node} (durable)`);
        }
      }
    }
    for (const key of dirtyKeys) this.checkQuorums(key);
  }

  /** (f) After healing and r=all reads: identical records on every voter, keeping every write that must survive. */
  checkConverged(voters: readonly string[]): void {
    for (const key of this.keysWritten()) {
      const first = voters[0] as string;
      const reference = this.view.visible(first, key);
      for (const node of voters) {
        for (const [kind, record] of [['visible', this.view.visible(node, key)], ['durable', this.view.durable(node, key)]] as const) {
          if (!sameRecord(record, reference)) {
            this.fail('f', `${key}: ${node} (${kind}) holds ${fmtRecord(record)} but ${first} holds ${fmtRecord(reference)}`);
          }
        }
      }
      for (const w of this.byKey.get(key) ?? []) {
        // Every write acknowledged at a majority, and every write of a final voter that its crash did not
        // orphan. (An unacknowledged write of a device removed meanwhile may be gone with it.)
        const mustSurvive = w.quorumAcked || (!w.orphaned && voters.includes(w.coordinator));
        if (mustSurvive && !this.keepsOrPurged(reference, w.id)) this.fail('f', `${key}: converged record ${fmtRecord(reference)} lost ${this.describeWrite(w.id)}`);
      }
      this.checkQuorums(key);
    }
  }

  /** (h) `record` holds no value that a purged delete superseded. */
  private checkNotResurrected(record: VersionedRecord, key: string, where: string): void {
    const purged = this.purgedByKey.get(key);
    if (purged === undefined) return;
    for (const s of record.siblings) {
      if (s.value === null) continue;
      const id = dotKey(s.dot);
      const by = purged.find((p) => this.keeps(p, id));
      if (by !== undefined) this.fail('h', `${where} ${key}: ${this.describeWrite(id)} is back after the purge of ${fmtRecord(by)}, which superseded it: ${fmtRecord(record)}`);
    }
  }

  /** (b), (c), (d) for one record. */
  private checkRecord(record: VersionedRecord, key: string, where: string): void {
    for (const s of record.siblings) {
      const w = this.writes.get(dotKey(s.dot));
      if (w === undefined || w.key !== key) this.fail('c', `${where} holds ${dotKey(s.dot)} for ${key}, which is no write of ${key}`);
      if (!bytesEqual(w.value, s.value) || hlcCompare(w.hlc, s.hlc) !== 0) {
        this.fail('c', `${where} holds ${w.id} for ${key} with another value or clock than was written`);
      }
    }
    for (const actor of Object.keys(record.context)) {
      if (vvGet(record.context, actor) > (this.maxCounter.get(actor) ?? 0)) {
        this.fail('c', `${where}: context ${fmtVv(record.context)} names a dot of ${actor} never issued`);
      }
    }
    for (const s of record.siblings) {
      const hist = this.writes.get(dotKey(s.dot))?.hist;
      for (const t of record.siblings) {
        if (hist?.has(dotKey(t.dot)) === true) {
          this.fail('b', `${where} ${key}: sibling ${dotKey(t.dot)} happened before sibling ${dotKey(s.dot)}: ${fmtRecord(record)}`);
        }
      }
    }
    for (const w of this.byKey.get(key) ?? []) {
      if (!covers(record.context, w.dot)) continue;
      // A key re-created after a purge has a context that covers its coordinator's older dots implicitly (a
      // vector): those that a purged delete superseded are not dropped unseen.
      if (!this.keepsOrPurged(record, w.id)) {
        this.fail('d', `${where} ${key}: ${this.describeWrite(w.id)} is covered by the context but neither kept nor superseded: ${fmtRecord(record)}`);
      }
    }
  }

  /**
   * (a) For every configuration some device works with (epoch E), every read quorum of it that a coordinator
   * could still assemble — from devices whose own epoch is at most E, since newer ones refuse — keeps every
   * write acknowledged at w>=majority, in the merge of its members' durable copies. Joint configurations
   * need a majority of the voters and of the previous voters.
   */
  private checkQuorums(key: string): void {
    const acked = (this.byKey.get(key) ?? []).filter((w) => this.quorumAcked(w));
    if (acked.length === 0) return;
    const epochOf = new Map(this.view.nodes.map((n) => [n, this.view.configOf(n).epoch]));
    const seen = new Set<number>();
    for (const node of this.view.nodes) {
      const config = this.view.configOf(node);
      if (config.epoch === 0 || seen.has(config.epoch)) continue;
      seen.add(config.epoch);
      for (const quorum of readQuorums(config, (n) => (epochOf.get(n) ?? 0) <= config.epoch && this.view.serves(n))) {
        let merged: VersionedRecord | undefined;
        for (const member of quorum) {
          const r = this.view.durable(member, key);
          if (r !== undefined) merged = merged === undefined ? r : mergeRecords(merged, r);
        }
        for (const w of acked) {
          if (!this.keepsOrPurged(merged, w.id)) {
            const copies = quorum.map((n) => `${n}=${fmtRecord(this.view.durable(n, key))}`).join(' ');
            this.fail('a', `${key}: read quorum {${quorum.join(',')}} of epoch ${config.epoch} lost ${this.describeWrite(w.id)}; they hold ${copies}`);
          }
        }
      }
    }
  }

  /** True when `record` has the write as a sibling or has a sibling that causally follows it. */
  private keeps(record: VersionedRecord | undefined, id: string): boolean {
    if (record === undefined) return false;
    return record.siblings.some((s) => {
      const k = dotKey(s.dot);
      return k === id || this.writes.get(k)?.hist.has(id) === true;
    });
  }

  /** keeps(), or a delete that causally follows the write was purged (the key may then be gone). */
  private keepsOrPurged(record: VersionedRecord | undefined, id: string): boolean {
    if (this.keeps(record, id)) return true;
    const w = this.writes.get(id);
    return w !== undefined && (this.purgedByKey.get(w.key) ?? []).some((p) => this.keeps(p, id));
  }

  private quorumAcked(w: WriteInfo): boolean {
    return w.quorumAcked;
  }

  describeWrite(id: string): string {
    const w = this.writes.get(id);
    if (w === undefined) return `unknown write ${id}`;
    const acked = w.ackedRequired === undefined ? 'unacknowledged' : `acknowledged (w needs ${w.ackedRequired}) at t=${w.ackedAt}`;
    return `write ${id} of ${w.key} issued at t=${w.issuedAt}, ${acked}${w.orphaned ? ', orphaned' : ''}`;
  }

  private fail(invariant: InvariantId, detail: string): never {
    throw new InvariantViolation(invariant, `t=${this.now}: ${detail}`);
  }
}

export function fmtVv(vv: VersionVector): string {
  return Object.keys(vv)
    .sort()
    .map((a) => `${a}:${vv[a]}`)
    .join(',');
}

export function fmtRecord(record: VersionedRecord | undefined): string {
  if (record === undefined) return '(none)';
  const sibs = record.siblings.map((s) => `${dotKey(s.dot)}${s.value === null ? '(del)' : ''}`).join(' ');
  return `[${sibs}]{${fmtVv(record.context)}}`;
}

export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameRecord(a: VersionedRecord | undefined, b: VersionedRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return recordsEqual(a, b) && a.siblings.every((s, i) => bytesEqual(s.value, b.siblings[i]?.value ?? null));
}

function subsets<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let mask = 1; mask < 1 << items.length; mask++) out.push(items.filter((_, i) => (mask & (1 << i)) !== 0));
  return out;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function majorityOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The minimal read quorums of `config` among devices passing `eligible`: subsets of its quorum members with a
 * majority of the voters and, while joint, previousNeeded() of the previous voters that still count (not
 * removed, not a seat being given to a new store).
 */
export function readQuorums(config: MembershipConfig, eligible: (node: string) => boolean): string[][] {
  const members = quorumIds(config).filter(eligible);
  const voters = new Set(voterIds(config));
  const previous = new Set(livePreviousVoters(config));
  const needV = majorityOf(config.voters.length);
  const needP = previousNeeded(config);
  const out: string[][] = [];
  for (const s of subsets(members)) {
    const v = s.filter((n) => voters.has(n)).length;
    const p = s.filter((n) => previous.has(n)).length;
    if (v < needV || p < needP) continue;
    // Minimal: dropping any member breaks it (supersets merge more, so they keep whatever a subset keeps).
    const minimal = s.every((drop) => {
      const rest = s.filter((n) => n !== drop);
      return rest.filter((n) => voters.has(n)).length < needV || rest.filter((n) => previous.has(n)).length < needP;
    });
    if (minimal) out.push(s);
  }
  return out;
}

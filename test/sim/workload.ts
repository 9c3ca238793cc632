// Simulated clients and faults: clients issue reads, blind and read-modify-write writes and deletes at random
// levels against random coordinators; a fault injector partitions, heals, crashes and restarts nodes, wipes
// their storage (identity kept) and steps their clocks.
import { isJoint, isRemoved, isVoter, seatOf } from '../../src/core/membership.js';
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import type { VersionedRecord } from '../../src/core/record.js';
import { EMPTY_VV, type VersionVector, dotKey } from '../../src/core/vv.js';
import type { ClientOutcome, Cluster } from './cluster.js';
import type { Rng } from './rng.js';
import type { Scheduler } from './scheduler.js';

export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: readonly string[];
  /** Pause between a client's operations. */
  readonly thinkMs: readonly [number, number];
  /** Clients start no operation at or after this time. */
  readonly untilMs: number;
  /** 'most': most writes at w=one (replicas diverge, for the anti-entropy runs). */
  readonly oneWrites: 'some' | 'most';
}

export interface WorkloadStats {
  /** Writes to fresh keys, never written again. */
  unique: number;
  reads: number;
  writes: number;
  deletes: number;
  /** Writes and deletes with a context from an earlier reply / with no context at all. */
  rmw: number;
  noContext: number;
  written: number;
  readOk: number;
  failed: number;
  rejected: number;
  lost: number;
}

interface Seen {
  readonly context: VersionVector;
  readonly siblings: readonly string[];
}

class Client {
  seq = 0;
  /** The last context this client obtained per key (from a read, or from a write's reply). */
  readonly seen = new Map<string, Seen>();
  /** Write-once keys this client wrote (a delete sometimes picks one: a tombstone nothing re-creates). */
  readonly uniqueKeys: string[] = [];
  constructor(readonly id: string) {}
}

export class Workload {
  readonly stats: WorkloadStats = { unique: 0, reads: 0, writes: 0, deletes: 0, rmw: 0, noContext: 0, written: 0, readOk: 0, failed: 0, rejected: 0, lost: 0 };

  constructor(
    private readonly rng: Rng,
    private readonly scheduler: Scheduler,
    private readonly cluster: Cluster,
    private readonly options: WorkloadOptions,
  ) {}

  start(): void {
    for (let i = 0; i < this.options.clients; i++) this.next(new Client(`c${i + 1}`));
  }

  private next(client: Client): void {
    const at = this.scheduler.now + this.rng.int(...this.options.thinkMs);
    if (at >= this.options.untilMs) return;
    this.scheduler.schedule(at, `client ${client.id}`, () => this.operate(client));
  }

  private level(coordinator: string): ConsistencyLevel {
    const n = Math.max(1, this.cluster.configOf(coordinator).voters.length);
    return this.rng.weighted<ConsistencyLevel>([
      ['quorum', 10],
      ['one', this.options.oneWrites === 'most' ? 40 : 2],
      ['all', 2],
      [this.rng.int(1, n), 3],
      [n + 1, 0.2], // impossible: must be refused with invalid_consistency
    ]);
  }

  private operate(client: Client): void {
    let key = this.rng.pick(this.options.keys);
    // Any device, members or not: non-members refuse (not_member), which is part of the test.
    const coordinator = this.rng.pick(this.cluster.nodes);
    const kind = this.rng.weighted([
      ['read', 35],
      ['rmw', 25],
      ['blind', 10],
      ['noContext', 15],
      ['delete', 15],
      ['unique', 5],
    ] as const);
    if (kind === 'unique') {
      // A key written once and never again: nothing supersedes it, so any loss shows.
      client.seq += 1;
      key = `u.${client.id}.${client.seq}`;
      client.uniqueKeys.push(key);
    } else if (kind === 'delete' && client.uniqueKeys.length > 0 && this.rng.chance(0.3)) {
      // Deleting a write-once key: its tombstone becomes stable and is purged; its value must never come back.
      key = this.rng.pick(client.uniqueKeys);
    }
    const level = this.level(coordinator);
    if (kind === 'read') {
      this.stats.reads += 1;
      this.cluster.submitRead(coordinator, key, level, (outcome) => {
        if (outcome.type === 'read') client.seen.set(key, seenFrom(outcome.record));
        this.finish(client, outcome);
      });
      return;
    }
    client.seq += 1;
    // rmw and delete use the client's last context for the key when it has one; else no context at all.
    // blind sends an explicit empty context: it supersedes nothing.
    const last = kind === 'rmw' || kind === 'delete' ? client.seen.get(key) : undefined;
    if (kind === 'unique') this.stats.unique += 1;
    if (kind === 'delete') this.stats.deletes += 1;
    else this.stats.writes += 1;
    if (last !== undefined) this.stats.rmw += 1;
    const context = kind === 'blind' ? EMPTY_VV : last?.context;
    if (context === undefined) this.stats.noContext += 1;
    const value = kind === 'delete' ? null : new TextEncoder().encode(`${client.id}.${client.seq}`);
    const request = { key, value, context, seen: last?.siblings ?? [], level };
    this.cluster.submitWrite(coordinator, request, (outcome) => {
      // A write's reply carries the coordinator's record: sometimes the client keeps it as its next context.
      if (outcome.type === 'written' && this.rng.chance(0.5)) client.seen.set(key, seenFrom(outcome.record));
      this.finish(client, outcome);
    });
  }

  private finish(client: Client, outcome: ClientOutcome): void {
    if (outcome.type === 'written') this.stats.written += 1;
    else if (outcome.type === 'read') this.stats.readOk += 1;
    else this.stats[outcome.type] += 1;
    const expected = ['invalid_consistency', 'coordinator down', 'not_member'];
    if (outcome.type === 'rejected' && !expected.includes(outcome.error)) {
      throw new Error(`unexpected refusal: ${outcome.error}`);
    }
    this.next(client);
  }
}

function seenFrom(record: VersionedRecord | undefined): Seen {
  if (record === undefined) return { context: EMPTY_VV, siblings: [] };
  return { context: record.context, siblings: record.siblings.map((s) => dotKey(s.dot)) };
}

export interface FaultOptions {
  readonly partitions: boolean;
  readonly crashes: boolean;
  /** Storage wipes (identity kept), at most a minority of the voters' stores lost at once. */
  readonly wipes: boolean;
  /** Wall-clock steps (back, forward, back to network time) and boots at 1970. */
  readonly clockSteps: boolean;
  readonly partitionEveryMs: readonly [number, number];
  readonly crashEveryMs: readonly [number, number];
  readonly wipeEveryMs: readonly [number, number];
  readonly clockEveryMs: readonly [number, number];
  readonly downMs: readonly [number, number];
  readonly untilMs: number;
  /** Wipe only settled members and removed devices (off in the sweeps: wipes come at any moment). */
  readonly avoidRewipes: boolean;
}

export class Faults {
  readonly stats = { partitions: 0, heals: 0, crashes: 0, wipes: 0, wipesOfVoters: 0, wipesRefused: 0, clockSteps: 0, boots1970: 0 };

  constructor(
    private readonly rng: Rng,
    private readonly scheduler: Scheduler,
    private readonly cluster: Cluster,
    private readonly options: FaultOptions,
  ) {}

  start(): void {
    if (this.options.partitions) this.schedulePartition();
    if (this.options.crashes) this.scheduleCrash();
    if (this.options.wipes) this.scheduleWipe();
    if (this.options.clockSteps) this.scheduleClockStep();
  }

  private schedulePartition(): void {
    const at = this.scheduler.now + this.rng.int(...this.options.partitionEveryMs);
    if (at >= this.options.untilMs) return;
    this.scheduler.schedule(at, 'fault partition', () => {
      const net = this.cluster.network;
      if (net.partitioned && this.rng.chance(0.6)) {
        this.cluster.heal();
        this.stats.heals += 1;
      } else {
        const ids = this.rng.shuffle(this.cluster.nodes);
        const cut = this.rng.int(1, ids.length - 1);
        this.cluster.partition([ids.slice(0, cut), ids.slice(cut)]);
        this.stats.partitions += 1;
      }
      this.scheduler.trace.add(`  network ${net.describePartition()}`);
      this.schedulePartition();
    });
  }

  /** A restart, sometimes (with clock faults on) without a real-time clock: the wall clock starts at 1970. */
  private restartLater(victim: string): number {
    const back = this.scheduler.now + this.rng.int(...this.options.downMs);
    const bootAt1970 = this.options.clockSteps && this.rng.chance(0.3);
    if (bootAt1970) this.stats.boots1970 += 1;
    this.scheduler.schedule(back, `restart ${victim}`, () => this.cluster.restart(victim, { bootAt1970 }));
    return back;
  }

  private scheduleCrash(): void {
    const at = this.scheduler.now + this.rng.int(...this.options.crashEveryMs);
    if (at >= this.options.untilMs) return;
    this.scheduler.schedule(at, 'fault crash', () => {
      const up = this.cluster.nodes.filter((id) => this.cluster.isUp(id));
      if (up.length > 0) {
        const victim = this.rng.pick(up);
        this.cluster.crash(victim);
        this.stats.crashes += 1;
        const back = this.restartLater(victim);
        this.scheduler.trace.add(`  crash ${victim} until ${back}`);
      }
      this.scheduleCrash();
    });
  }

  /**
   * Wipes a device's storage (it restarts with a new empty store and asks to join): any device, as long as the
   * voters whose store is lost stay a minority (Cluster.lossTolerable). A majority of voters losing storage at
   * once is outside the guarantee: nothing is left to re-seat them from.
   */
  private scheduleWipe(): void {
    const at = this.scheduler.now + this.rng.int(...this.options.wipeEveryMs);
    if (at >= this.options.untilMs) return;
    this.scheduler.schedule(at, 'fault wipe', () => {
      // Learners are few: pick one often enough that their seat replacement (a plain change and a sync) is seen.
      const learners = this.cluster.latestConfig().learners.map((m) => m.peerId);
      const victim = learners.length > 0 && this.rng.chance(0.3) ? this.rng.pick(learners) : this.rng.pick(this.cluster.nodes);
      if (this.cluster.lossTolerable(victim) && (!this.options.avoidRewipes || this.settled(victim))) {
        const latest = this.cluster.latestConfig();
        this.cluster.wipe(victim);
        this.stats.wipes += 1;
        if (isVoter(latest, victim)) this.stats.wipesOfVoters += 1;
        const back = this.restartLater(victim);
        this.scheduler.trace.add(`  wipe ${victim} until ${back}`);
      } else {
        this.stats.wipesRefused += 1;
      }
      this.scheduleWipe();
    });
  }

  /**
   * A member whose store holds its seat in the newest configuration, with no membership change under way (a
   * change in flight may be giving it a seat that names its store); or a removed device.
   */
  private settled(node: string): boolean {
    const latest = this.cluster.latestConfig();
    if (isRemoved(latest, node)) return true;
    if (this.cluster.membershipInFlight()) return false;
    return !isJoint(latest) && seatOf(latest, node)?.store === this.cluster.storeOf(node) && !this.cluster.storageLost(node, latest);
  }

  /** Steps a device's wall clock back or forward (seconds to an hour), or back to network time. */
  private scheduleClockStep(): void {
    const at = this.scheduler.now + this.rng.int(...this.options.clockEveryMs);
    if (at >= this.options.untilMs) return;
    this.scheduler.schedule(at, 'fault clock', () => {
      const node = this.rng.pick(this.cluster.nodes);
      const kind = this.rng.weighted([
        ['back', 3],
        ['forward', 3],
        ['ntp', 2],
      ] as const);
      const delta = kind === 'ntp' ? -this.cluster.clockOffsetOf(node) : (kind === 'back' ? -1 : 1) * this.rng.weighted([
        [this.rng.int(1, 500), 1],
        [this.rng.int(1_000, 60_000), 1],
        [this.rng.int(60_000, 3_600_000), 1],
      ]);
      this.cluster.stepClock(node, delta);
      this.stats.clockSteps += 1;
      this.scheduleClockStep();
    });
  }
}

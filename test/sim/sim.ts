// One simulation run from one seed: derives a scenario from the seed, runs the random phase with invariant
// checks after every event, then heals everything, waits (bounded) until the devices' own mechanisms finished
// every join and seat replacement, then converges the replicas (r=all reads, or anti-entropy alone) and checks.
import { isJoint, replicaIds } from '../../src/core/membership.js';
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import { GodView, InvariantViolation, type InvariantId } from './checker.js';
import { Cluster, type KnownBug, type SimBug, fmtConfig } from './cluster.js';
import type { NetworkConditions } from './network.js';
import { Rng } from './rng.js';
import { Scheduler } from './scheduler.js';
import { MembershipDriver } from './membership.js';
import { Faults, Workload } from './workload.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface SimConfig {
  readonly nodes: number;
  readonly keys: number;
  readonly clients: number;
  /** Length of the random phase (virtual ms). */
  readonly durationMs: number;
  readonly requestTimeoutMs: number;
  readonly network: NetworkConditions;
  readonly durabilityMs: readonly [number, number];
  readonly partitions: boolean;
  readonly crashes: boolean;
  /** Storage wipes with the identity kept (a minority of the voters' stores lost at once at most). */
  readonly wipes: boolean;
  /** Wall-clock steps and boots at 1970. */
  readonly clockSteps: boolean;
  /** Membership changes during the run (joins of spares, removals, promotions), and how many spares. */
  readonly membership: boolean;
  readonly spares: number;
  readonly maxVoters: number;
  readonly bug: SimBug | undefined;
  /** Anti-entropy rounds on every device during the run (virtual ms between rounds; 0: off). */
  readonly antiEntropyIntervalMs: number;
  /** Tombstone purge grace (Infinity: no purge); purges need anti-entropy. */
  readonly tombstoneGraceMs: number;
  readonly hintsMax: number;
  readonly hintTtlMs: number;
  /** Members admit devices that ask to join without approval. */
  readonly autoAdmit: boolean;
  /**
   * How the run ends after healing: 'reads' reads every key at r=all (read repair); 'antiEntropy' runs
   * anti-entropy only (no reads) until every member's digest is equal.
   */
  readonly finalPhase: 'reads' | 'antiEntropy';
  /** Share of writes at w=one (the rest: quorum, all, numeric). */
  readonly oneWrites: 'some' | 'most';
  /** Known src/ bugs steered around (cluster.ts KnownBug); none by default: runs model src/ as it is. */
  readonly workarounds: readonly KnownBug[];
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly invariant: InvariantId | undefined;
  /** Failure report with the seed and replay commands (undefined when ok). */
  readonly message: string | undefined;
  readonly traceHash: string;
  readonly events: number;
  readonly virtualMs: number;
  readonly config: SimConfig;
  readonly stats: Record<string, number>;
  readonly trace: readonly string[] | undefined;
}

export interface RunOptions {
  /** Keep every trace line (for --verbose). */
  readonly keepTrace?: boolean;
  readonly overrides?: Partial<SimConfig>;
  /** Safety net against runaway runs. */
  readonly maxEvents?: number;
}

/** The scenario for a seed: cluster size, workload, network conditions and faults. */
export function configForSeed(seed: number, overrides: Partial<SimConfig> = {}): SimConfig {
  const rng = new Rng(seed ^ 0x51d3c0de);
  const maxDelay = rng.int(2, 40);
  const base: Mutable<SimConfig> = {
    nodes: rng.int(3, 5),
    keys: rng.int(1, 5),
    clients: rng.int(2, 6),
    durationMs: rng.int(1000, 2500),
    requestTimeoutMs: rng.pick([80, 150, 300]),
    network: {
      minDelayMs: rng.int(1, Math.min(5, maxDelay)),
      maxDelayMs: maxDelay,
      lossRate: rng.pick([0, 0, 0.02, 0.1, 0.25]),
      duplicateRate: rng.pick([0, 0.02, 0.1]),
    },
    durabilityMs: [0, rng.pick([1, 5, 20, 60])],
    partitions: rng.chance(0.8),
    crashes: rng.chance(0.6),
    wipes: false,
    clockSteps: false,
    membership: false,
    spares: 0,
    maxVoters: 5,
    bug: undefined,
    antiEntropyIntervalMs: 0,
    tombstoneGraceMs: Infinity,
    hintsMax: 1000,
    hintTtlMs: 60_000,
    autoAdmit: true,
    finalPhase: 'reads',
    oneWrites: 'some',
    workarounds: [],
  };
  base.membership = rng.chance(0.6);
  base.spares = base.membership ? rng.int(1, 2) : 0;
  base.maxVoters = rng.int(3, 5);
  // Storage faults and the runtime's background work (issue 11): wipes, clock steps, anti-entropy with tombstone
  // purge (a grace from just above the longest request deadline plus delays, to ten times it), hinted handoff.
  base.wipes = rng.chance(0.5);
  base.clockSteps = rng.chance(0.4);
  base.antiEntropyIntervalMs = rng.pick([0, 20, 40, 100]);
  const t = base.requestTimeoutMs;
  const tightGraceMs = t + 2 * maxDelay + base.durabilityMs[1] + 1;
  base.tombstoneGraceMs = rng.pick([Infinity, tightGraceMs, 2 * t, 4 * t, 10 * t]); // used while anti-entropy runs
  base.hintsMax = rng.pick([3, 50, 1000]);
  base.hintTtlMs = rng.pick([5 * t, 60_000, 3 * 3_600_000]);
  base.autoAdmit = rng.chance(0.5);
  return { ...base, ...overrides };
}

/** The anti-entropy scenario on top of each seed's own (cluster size, faults, membership changes, purge grace). */
export const AE_OVERRIDES = { antiEntropyIntervalMs: 40, finalPhase: 'antiEntropy', oneWrites: 'most' } as const;

export function replayCommands(seed: number, bug: SimBug | undefined, workarounds: readonly KnownBug[] = [], antiEntropy = false): string {
  const bugFlag = `${bug === undefined ? '' : ` --bug ${bug}`}${antiEntropy ? ' --anti-entropy' : ''}`;
  const env = bug === undefined ? '' : ` SIM_BUG=${bug}`;
  const flags = `${bugFlag}${workarounds.map((w) => ` --workaround ${w}`).join('')}`;
  const envs = `${env} SIM_WORKAROUNDS=${workarounds.length === 0 ? 'none' : workarounds.join(',')}`;
  return [
    `  replay: npx tsc -p tsconfig.sim.json && node dist-sim/test/sim/cli.js --seed ${seed}${flags} --verbose`,
    antiEntropy
      ? `      or: SIM_AE_SEEDS=1 SIM_AE_SEED_START=${seed}${envs} npx vitest run test/sim/anti-entropy.test.ts`
      : `      or: SIM_SEEDS=1 SIM_SEED_START=${seed}${envs} npx vitest run test/sim/sim.test.ts`,
  ].join('\n');
}

export async function runSimulation(seed: number, options: RunOptions = {}): Promise<SimResult> {
  const config = configForSeed(seed, options.overrides);
  const maxEvents = options.maxEvents ?? 2_000_000;
  const root = new Rng(seed);
  const scheduler = new Scheduler(options.keepTrace === true);
  const keys = Array.from({ length: config.keys }, (_, i) => `k${i + 1}`);
  const god = new GodView();
  const cluster = new Cluster(root.fork(), scheduler, {
    nodeCount: config.nodes,
    spares: config.spares,
    requestTimeoutMs: config.requestTimeoutMs,
    durabilityMs: config.durabilityMs,
    sendFailMs: [1, 5],
    clockSkewMs: 20,
    network: config.network,
    bug: config.bug,
    antiEntropyIntervalMs: config.antiEntropyIntervalMs,
    tombstoneGraceMs: config.tombstoneGraceMs,
    hintsMax: config.hintsMax,
    hintTtlMs: config.hintTtlMs,
    autoAdmit: config.autoAdmit,
    maxVoters: config.maxVoters,
    workarounds: config.workarounds,
  }, god, root.fork());
  god.attach(cluster);
  const workload = new Workload(root.fork(), scheduler, cluster, {
    clients: config.clients,
    keys,
    thinkMs: [0, 30],
    untilMs: config.durationMs,
    oneWrites: config.oneWrites,
  });
  const faults = new Faults(root.fork(), scheduler, cluster, {
    partitions: config.partitions,
    crashes: config.crashes,
    wipes: config.wipes,
    clockSteps: config.clockSteps,
    partitionEveryMs: [50, 600],
    crashEveryMs: [100, 900],
    wipeEveryMs: [150, 700],
    clockEveryMs: [100, 600],
    downMs: [5, 400],
    untilMs: config.durationMs,
    // Wipes at any moment, also of a device being admitted, re-seated or mid joint phase (see cluster.ts
    // silentPushTarget: restricting them hid four liveness bugs).
    avoidRewipes: false,
  });
  const membershipRng = root.fork();
  const membership = new MembershipDriver(membershipRng, cluster, {
    everyMs: [20, 250],
    maxVoters: config.maxVoters,
    untilMs: config.durationMs,
  });
  const finalReads = { attempts: 0, succeeded: 0 };
  const convergence = { healedAt: 0, convergedAt: -1 };
  const liveness = { healedAt: 0, settledAt: -1 };

  // The drivers are the daemon's own (promise-based) code: every event's promise continuations run to the end
  // before the next event (settled()), so the order of everything stays the seed's.
  const runUntilIdle = async (): Promise<void> => {
    await settled();
    cluster.takeFailure();
    while (scheduler.step()) {
      await settled();
      cluster.takeFailure();
      god.now = scheduler.now;
      god.checkStep();
      if (scheduler.executed > maxEvents) throw new Error(`more than ${maxEvents} events: runaway simulation`);
    }
  };

  let failure: { invariant: InvariantId; text: string } | undefined;
  try {
    workload.start();
    faults.start();
    if (config.membership) membership.start();
    cluster.aeUntilMs = config.durationMs;
    cluster.daemonUntilMs = config.durationMs;
    cluster.ensureAeTicks();
    cluster.ensureDaemons();
    await runUntilIdle();

    // Final phase: heal, stop loss and duplication, bring every node back.
    cluster.heal();
    cluster.network.conditions = { ...cluster.network.conditions, lossRate: 0, duplicateRate: 0 };
    for (const id of cluster.nodes) cluster.restart(id);
    scheduler.trace.add(`${scheduler.now} final phase: healed, all up`);
    // (l) Liveness: with no more faults, the devices' own mechanisms (join loops, the member asked giving a
    // wiped device's seat to its new store, takeover of joint phases, heartbeats telling stale devices) must
    // finish every join and seat replacement within LIVENESS_LIMIT_MS of virtual time.
    liveness.healedAt = scheduler.now;
    const livenessLimit = scheduler.now + LIVENESS_LIMIT_MS;
    cluster.daemonUntilMs = livenessLimit;
    cluster.aeUntilMs = livenessLimit;
    cluster.ensureDaemons();
    cluster.ensureAeTicks();
    const probe = (): void => {
      if (membershipSettled(cluster)) {
        liveness.settledAt = scheduler.now;
        cluster.daemonUntilMs = scheduler.now; // background loops end at their next turn
        cluster.aeUntilMs = scheduler.now;
        return;
      }
      if (scheduler.now + LIVENESS_PROBE_MS <= livenessLimit) scheduler.schedule(scheduler.now + LIVENESS_PROBE_MS, 'liveness probe', probe);
    };
    scheduler.schedule(scheduler.now, 'liveness probe', probe);
    await runUntilIdle();
    // Work under way when it looked settled (a join round's request, a change it set off) may have changed the
    // membership after the loops ended: a device that must ask again (seated on a store it has lost meanwhile)
    // would wait for ever with no daemon running. Not settled then: the loops run on, and the probe looks again.
    while (liveness.settledAt >= 0 && !membershipSettled(cluster) && scheduler.now < livenessLimit) {
      scheduler.trace.add(`${scheduler.now} unsettled again: ${unsettled(cluster)}`);
      liveness.settledAt = -1;
      cluster.daemonUntilMs = livenessLimit;
      cluster.aeUntilMs = livenessLimit;
      cluster.ensureDaemons();
      cluster.ensureAeTicks();
      scheduler.schedule(scheduler.now, 'liveness probe', probe);
      await runUntilIdle();
    }
    if (liveness.settledAt < 0) throw new InvariantViolation('l', `${LIVENESS_LIMIT_MS} virtual ms after healing (t=${liveness.healedAt}): ${unsettled(cluster)}`);
    if (config.finalPhase === 'reads' && config.antiEntropyIntervalMs > 0 && config.tombstoneGraceMs < Infinity) {
      // A quiet spell of anti-entropy rounds, long enough for tombstones to become stable and be purged (and for
      // anything a purge superseded to show up again, if it can).
      cluster.aeUntilMs = scheduler.now + Math.min(config.tombstoneGraceMs + 20 * config.antiEntropyIntervalMs, QUIET_AE_MAX_MS);
      cluster.ensureAeTicks();
      await runUntilIdle();
    }
    // Announce the newest configuration (a stand-in for heartbeats) and check nothing is left joint.
    let settled = false;
    membership.settle(() => {
      settled = true;
    });
    await runUntilIdle();
    if (!settled) throw new InvariantViolation('f', 'the membership did not settle after healing');
    const finalVoters = cluster.latestConfig().voters.map((m) => m.peerId);

    if (config.finalPhase === 'antiEntropy') {
      // Anti-entropy alone (no client reads): every member of the final configuration must reach the same
      // digest, then the same records, keeping every acknowledged write and every concurrent sibling.
      const members = [...finalVoters, ...cluster.latestConfig().learners.map((m) => m.peerId)];
      convergence.healedAt = scheduler.now;
      const limitMs = scheduler.now + 60_000;
      cluster.aeUntilMs = limitMs;
      // Converged: equal digests, and (with purging on) no tombstone left to purge anywhere — a purge after that
      // moment would make the digests differ again until its report has gone round.
      cluster.onAeTick = () => {
        if (convergence.convergedAt < 0 && cluster.digestsEqual(members) && (config.tombstoneGraceMs === Infinity || cluster.tombstonesWaiting(members) === 0)) {
          convergence.convergedAt = scheduler.now;
          cluster.aeUntilMs = scheduler.now; // stop scheduling rounds: the run ends when in-flight work settles
        }
      };
      cluster.ensureAeTicks();
      await runUntilIdle();
      if (!cluster.digestsEqual(members)) {
        throw new InvariantViolation('f', `anti-entropy did not converge the digests of ${members.join(',')} within ${limitMs - convergence.healedAt} virtual ms`);
      }
      god.checkConverged(members);
    } else {
      // Read every key at r=all (read repair) until it succeeds, one coordinator after another.
      const level: ConsistencyLevel = 'all';
      const finalKeys = [...new Set([...keys, ...god.keysWritten()])];
      finalKeys.forEach((key, i) => {
        const attempt = (n: number): void => {
          finalReads.attempts += 1;
          const coordinator = finalVoters[(i + n) % finalVoters.length] as string;
          cluster.submitRead(coordinator, key, level, (outcome) => {
            if (outcome.type === 'read') {
              finalReads.succeeded += 1;
              return;
            }
            if (n >= 20) throw new InvariantViolation('f', `r=all read of ${key} still failing after ${n} attempts: ${JSON.stringify(outcome)}`);
            scheduler.schedule(scheduler.now + 10, `final read ${key} retry ${n + 1}`, () => attempt(n + 1));
          });
        };
        scheduler.schedule(scheduler.now, `final read ${key}`, () => attempt(0));
      });
      await runUntilIdle();
      if (finalReads.succeeded !== finalKeys.length) {
        throw new InvariantViolation('f', `only ${finalReads.succeeded} of ${finalKeys.length} final r=all reads succeeded`);
      }
      god.checkConverged(finalVoters);
    }
  } catch (error) {
    if (error instanceof InvariantViolation) failure = { invariant: error.invariant, text: error.message };
    else failure = { invariant: 'x', text: `(x) exception at t=${scheduler.now}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}` };
  }

  const stats: Record<string, number> = {
    ...workload.stats,
    ...prefixed('fault', faults.stats),
    ...prefixed('cluster', cluster.stats),
    ...prefixed('net', cluster.network.stats),
    ...prefixed('membership', membership.stats),
    ...prefixed('svc', cluster.serviceStats),
    ...prefixed('hints', cluster.hintStats()),
    purges: god.purgeCount,
    settleMs: liveness.settledAt < 0 ? -1 : liveness.settledAt - liveness.healedAt,
    configs: god.configsCommitted,
    finalReadAttempts: finalReads.attempts,
    ...prefixed('ae', cluster.aeStats()),
    aeConvergeMs: convergence.convergedAt < 0 ? -1 : convergence.convergedAt - convergence.healedAt,
    ackedQuorum: [...god.allWrites].filter((w) => w.quorumAcked).length,
    orphaned: [...god.allWrites].filter((w) => w.orphaned).length,
  };
  const message =
    failure === undefined
      ? undefined
      : [
          `simulation seed ${seed} failed${config.bug === undefined ? '' : ` (bug: ${config.bug})`}:`,
          failure.text,
          `  scenario: ${JSON.stringify(config)}`,
          replayCommands(seed, config.bug, config.workarounds, config.finalPhase === 'antiEntropy'),
        ].join('\n');
  return {
    seed,
    ok: failure === undefined,
    invariant: failure?.invariant,
    message,
    traceHash: scheduler.trace.digest(),
    events: scheduler.executed,
    virtualMs: scheduler.now,
    config,
    stats,
    trace: scheduler.trace.lines,
  };
}

/** How long after healing every join and replacement must be finished (virtual ms), and how often to look. */
export const LIVENESS_LIMIT_MS = 30_000;
const LIVENESS_PROBE_MS = 20;
/** Longest quiet spell of anti-entropy before the final reads (virtual ms). */
const QUIET_AE_MAX_MS = 5_000;

/** No joint phase; every member of the newest configuration is up, on it, and its store holds its seat. */
function membershipSettled(cluster: Cluster): boolean {
  const latest = cluster.latestConfig();
  if (isJoint(latest)) return false;
  // A change still queued or under way on some device (an operator's approval waiting behind another change) would
  // commit after the daemons' loops ended: a device it seats on a store that is gone would never ask again.
  if (cluster.nodes.some((n) => (cluster.service(n)?.changesInFlight ?? 0) > 0)) return false;
  return replicaIds(latest).every((n) => cluster.isUp(n) && cluster.configOf(n).epoch === latest.epoch && cluster.trulySeated(n));
}

function unsettled(cluster: Cluster): string {
  const latest = cluster.latestConfig();
  const lagging = replicaIds(latest)
    .filter((n) => !(cluster.isUp(n) && cluster.configOf(n).epoch === latest.epoch && cluster.trulySeated(n)))
    .map((n) => `${n} (epoch ${cluster.configOf(n).epoch}, store ${cluster.storeOf(n)}${cluster.trulySeated(n) ? '' : ', not seated'})`);
  return `newest configuration epoch ${latest.epoch}: ${fmtConfig(latest)}${isJoint(latest) ? ' still joint' : ''}${lagging.length > 0 ? `; not settled: ${lagging.join(', ')}` : ''}`;
}

/** Resolves once every promise continuation queued so far (and those they queue) has run. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function prefixed(prefix: string, stats: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) if (typeof v === 'number') out[`${prefix}.${k}`] = v;
  return out;
}

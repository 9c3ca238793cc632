// One simulation run from one seed: derives a scenario from the seed, runs the random phase with invariant
// checks after every event, then heals everything, reads every key at r=all and checks convergence.
import type { ConsistencyLevel } from '../../src/core/quorum.js';
import { GodView, InvariantViolation, type InvariantId } from './checker.js';
import { Cluster, type SimBug } from './cluster.js';
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
  /** Membership changes during the run (joins of spares, removals, promotions), and how many spares. */
  readonly membership: boolean;
  readonly spares: number;
  readonly maxVoters: number;
  readonly bug: SimBug | undefined;
  /** Anti-entropy rounds on every device during the run (virtual ms between rounds; 0: off). */
  readonly antiEntropyIntervalMs: number;
  /**
   * How the run ends after healing: 'reads' reads every key at r=all (read repair); 'antiEntropy' runs
   * anti-entropy only (no reads) until every member's digest is equal.
   */
  readonly finalPhase: 'reads' | 'antiEntropy';
  /** Share of writes at w=one (the rest: quorum, all, numeric). */
  readonly oneWrites: 'some' | 'most';
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
    membership: false,
    spares: 0,
    maxVoters: 5,
    bug: undefined,
    antiEntropyIntervalMs: 0,
    finalPhase: 'reads',
    oneWrites: 'some',
  };
  base.membership = rng.chance(0.6);
  base.spares = base.membership ? rng.int(1, 2) : 0;
  base.maxVoters = rng.int(3, 5);
  return { ...base, ...overrides };
}

export function replayCommands(seed: number, bug: SimBug | undefined): string {
  const bugFlag = bug === undefined ? '' : ` --bug ${bug}`;
  const env = bug === undefined ? '' : ` SIM_BUG=${bug}`;
  return [
    `  replay: npx tsc -p tsconfig.sim.json && node dist-sim/test/sim/cli.js --seed ${seed}${bugFlag} --verbose`,
    `      or: SIM_SEEDS=1 SIM_SEED_START=${seed}${env} npx vitest run test/sim/sim.test.ts`,
  ].join('\n');
}

export function runSimulation(seed: number, options: RunOptions = {}): SimResult {
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
    partitionEveryMs: [50, 600],
    crashEveryMs: [100, 900],
    downMs: [5, 400],
    untilMs: config.durationMs,
  });
  const membershipRng = root.fork();
  const membership = new MembershipDriver(membershipRng, scheduler, cluster, {
    everyMs: [20, 250],
    maxVoters: config.maxVoters,
    untilMs: config.durationMs,
  });
  const finalReads = { attempts: 0, succeeded: 0 };
  const convergence = { healedAt: 0, convergedAt: -1 };

  const runUntilIdle = (): void => {
    while (scheduler.step()) {
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
    cluster.ensureAeTicks();
    runUntilIdle();

    // Final phase: heal, stop loss and duplication, bring every node back, let everything in flight settle.
    cluster.network.heal();
    cluster.network.conditions = { ...cluster.network.conditions, lossRate: 0, duplicateRate: 0 };
    for (const id of cluster.nodes) cluster.restart(id);
    scheduler.trace.add(`${scheduler.now} final phase: healed, all up`);
    runUntilIdle();
    // Finish any voter change still joint (sync, then finalize), so the final configuration is stable.
    let settled = false;
    membership.settle(() => {
      settled = true;
    });
    runUntilIdle();
    if (!settled) throw new InvariantViolation('f', 'the membership did not settle after healing');
    const finalVoters = cluster.latestConfig().voters.map((m) => m.peerId);

    if (config.finalPhase === 'antiEntropy') {
      // Anti-entropy alone (no client reads): every member of the final configuration must reach the same
      // digest, then the same records, keeping every acknowledged write and every concurrent sibling.
      const members = [...finalVoters, ...cluster.latestConfig().learners.map((m) => m.peerId)];
      convergence.healedAt = scheduler.now;
      const limitMs = scheduler.now + 60_000;
      cluster.aeUntilMs = limitMs;
      cluster.onAeTick = () => {
        if (convergence.convergedAt < 0 && cluster.digestsEqual(members)) {
          convergence.convergedAt = scheduler.now;
          cluster.aeUntilMs = scheduler.now; // stop scheduling rounds: the run ends when in-flight work settles
        }
      };
      cluster.ensureAeTicks();
      runUntilIdle();
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
      runUntilIdle();
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
          replayCommands(seed, config.bug),
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

function prefixed(prefix: string, stats: object): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) if (typeof v === 'number') out[`${prefix}.${k}`] = v;
  return out;
}

// Command line for the simulator (npm run sim -- ...): sweep seeds and print pass/fail counts, or replay one
// seed verbosely. Build first: tsc -p tsconfig.sim.json; then node dist-sim/test/sim/cli.js --help.
import { KNOWN_BUG_NAMES, type KnownBug, SIM_BUGS, type SimBug } from './cluster.js';
import { AE_OVERRIDES, type SimResult, runSimulation } from './sim.js';

interface Args {
  seeds: number;
  start: number;
  seed: number | undefined;
  verbose: boolean;
  bug: SimBug | undefined;
  workarounds: KnownBug[];
  antiEntropy: boolean;
}

const USAGE = [
  'usage: node dist-sim/test/sim/cli.js --seeds N [--start S] [--bug NAME] [--workaround NAME|all]...   sweep seeds S..S+N-1 (default 100 from 1)',
  '       node dist-sim/test/sim/cli.js --seed X [--verbose] [--bug NAME] [--workaround NAME|all]...    run (and print the trace of) one seed',
  `  bugs (deliberately broken runtimes): ${SIM_BUGS.join(', ')}`,
  `  workarounds (fixes of src/ bugs the simulator found, all on by default; none = the code before them; see cluster.ts KnownBug): ${KNOWN_BUG_NAMES.join(', ')}`,
  '  --anti-entropy: the scenario of test/sim/anti-entropy.test.ts (w=one writes, anti-entropy alone converges)',
].join('\n');

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seeds: 100, start: 1, seed: undefined, verbose: false, bug: undefined, workarounds: [], antiEntropy: false };
  let workaroundsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const int = (): number => {
      const v = value();
      if (!/^[0-9]+$/.test(v)) throw new Error(`${flag} ${v}: not a non-negative integer\n${USAGE}`);
      return Number(v);
    };
    if (flag === '--seeds') args.seeds = int();
    else if (flag === '--start') args.start = int();
    else if (flag === '--seed') args.seed = int();
    else if (flag === '--verbose' || flag === '-v') args.verbose = true;
    else if (flag === '--anti-entropy') args.antiEntropy = true;
    else if (flag === '--bug') {
      const bug = value();
      if (!(SIM_BUGS as readonly string[]).includes(bug)) throw new Error(`unknown bug ${bug}: one of ${SIM_BUGS.join(', ')}`);
      args.bug = bug as SimBug;
    } else if (flag === '--workaround') {
      const name = value();
      workaroundsGiven = true;
      if (name === 'none') args.workarounds = [];
      else if (name === 'all') args.workarounds = [...KNOWN_BUG_NAMES];
      else if ((KNOWN_BUG_NAMES as readonly string[]).includes(name)) args.workarounds.push(name as KnownBug);
      else throw new Error(`unknown workaround ${name}: all, none, or one of ${KNOWN_BUG_NAMES.join(', ')}`);
    } else if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${flag}\n${USAGE}`);
  }
  // The src/ bugs behind the flags are fixed: model the fixed code unless asked otherwise (--workaround none).
  if (!workaroundsGiven) args.workarounds = [...KNOWN_BUG_NAMES];
  return args;
}

function summary(r: SimResult): string {
  const s = r.stats;
  return (
    `seed ${r.seed}: ${r.ok ? 'ok' : `FAILED (${r.invariant})`} events=${r.events} t=${r.virtualMs}ms trace=${r.traceHash} ` +
    `nodes=${r.config.nodes} keys=${r.config.keys} writes=${(s.writes ?? 0) + (s.deletes ?? 0)} written=${s.written} ` +
    `ackedQuorum=${s.ackedQuorum} reads=${s.reads} failed=${s.failed} lost=${s.lost} crashes=${s['cluster.crashes']} ` +
    `orphaned=${s.orphaned} maxSiblings=${s['cluster.maxSiblings']}`
  );
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const overrides = { ...(args.antiEntropy ? AE_OVERRIDES : {}), ...(args.bug === undefined ? {} : { bug: args.bug }), ...(args.workarounds.length === 0 ? {} : { workarounds: args.workarounds }) };
  if (args.seed !== undefined) {
    const result = await runSimulation(args.seed, { keepTrace: args.verbose, overrides });
    if (args.verbose) {
      console.log(`scenario: ${JSON.stringify(result.config)}`);
      for (const line of result.trace ?? []) console.log(line);
      console.log(`stats: ${JSON.stringify(result.stats)}`);
    }
    console.log(summary(result));
    if (result.message !== undefined) console.log(result.message);
    return result.ok ? 0 : 1;
  }
  const started = performance.now();
  const failures: SimResult[] = [];
  const totals = new Map<string, number>();
  let events = 0;
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    const result = await runSimulation(seed, { overrides });
    events += result.events;
    for (const [k, v] of Object.entries(result.stats)) {
      totals.set(k, k === 'cluster.maxSiblings' ? Math.max(totals.get(k) ?? 0, v) : (totals.get(k) ?? 0) + v);
    }
    totals.set('settleMaxMs', Math.max(totals.get('settleMaxMs') ?? 0, result.stats.settleMs ?? 0));
    if (!result.ok) {
      failures.push(result);
      console.log(summary(result));
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${args.seeds - failures.length} passed, ${failures.length} failed (seeds ${args.start}..${args.start + args.seeds - 1}` +
      `${args.bug === undefined ? '' : `, bug ${args.bug}`}; ${events} events in ${seconds}s)`,
  );
  const shown = [
    'writes', 'deletes', 'rmw', 'noContext', 'written', 'ackedQuorum', 'reads', 'readOk', 'failed', 'lost', 'cluster.crashes', 'orphaned', 'fault.partitions', 'cluster.maxSiblings',
    'cluster.wipes', 'fault.wipesOfVoters', 'svc.replacementsDone', 'svc.admitted', 'svc.alreadyMember', 'svc.joinsRefusedRemoved', 'svc.readmitRefused', 'svc.takeovers', 'svc.joinRequests', 'svc.joined',
    'purges', 'cluster.hints', 'hints.delivered', 'cluster.handovers', 'cluster.clockSteps', 'cluster.boots1970', 'cluster.hlcBehind', 'settleMaxMs',
  ];
  console.log(`totals: ${shown.map((k) => `${k}=${totals.get(k) ?? 0}`).join(' ')}`);
  const first = failures[0];
  if (first?.message !== undefined) console.log(`\nfirst failure:\n${first.message}`);
  return failures.length === 0 ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 2;
}

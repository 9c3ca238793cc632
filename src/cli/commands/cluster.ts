// Membership commands: `admit` (this device's admission window) and `approve`, `remove`, `leave`.
import { DEFAULTS } from '../../config/defaults.js';
import type { AdmissionView } from '../../node/status-view.js';
import { type Api, type ErrorBody, type Values, failWith } from '../api.js';
import { COMMANDS, UsageError, noArguments } from '../usage.js';
import { admissionLine } from './status.js';

/** What POST /cluster/approve|remove|leave answer: the resulting configuration. */
interface ConfigSummary {
  readonly epoch: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
  readonly removed: readonly string[];
}

export async function admit(api: Api, values: Values, positionals: string[], json: boolean): Promise<number> {
  noArguments(positionals);
  if (values.close === true && values.for !== undefined) throw new UsageError(`--for and --close contradict each other (usage: ${COMMANDS.admit?.usage})`);
  const forMs = values.close === true ? 0 : values.for === undefined ? DEFAULTS.admissionWindowMsDefault : parseDuration(String(values.for));
  const payload = new TextEncoder().encode(JSON.stringify({ forMs }));
  const res = await api.request('POST', '/cluster/admit', payload, { 'Content-Type': 'application/json' });
  const body = (await res.json()) as Partial<AdmissionView>;
  if (!res.ok) return failWith(body as ErrorBody);
  process.stdout.write(json ? `${JSON.stringify(body)}\n` : `${admissionLine(body)}\n`);
  return 0;
}

/** `approve PEER`, `remove PEER`, `leave`. */
export async function change(api: Api, name: 'approve' | 'remove' | 'leave', positionals: string[], json: boolean): Promise<number> {
  const wanted = name === 'leave' ? 0 : 1;
  if (positionals.length < wanted) throw new UsageError(`missing PEER (usage: ${COMMANDS[name]?.usage})`);
  if (positionals.length > wanted) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[wanted])}`);
  const payload = name === 'leave' ? new Uint8Array() : new TextEncoder().encode(JSON.stringify({ peer: positionals[0] }));
  const res = await api.request('POST', `/cluster/${name}`, payload, { 'Content-Type': 'application/json' });
  const body = (await res.json()) as Partial<ConfigSummary>;
  if (!res.ok) return failWith(body as ErrorBody);
  const voters = body.voters ?? [];
  const learners = body.learners ?? [];
  process.stdout.write(json ? `${JSON.stringify(body)}\n` : `ok: epoch ${String(body.epoch)}, ${voters.length} voter(s), ${learners.length} learner(s)\n`);
  return 0;
}

/** `30s`, `10m`, `1h`, `1500ms` → milliseconds (a unit is required; at most DEFAULTS.admissionWindowMsMax). */
function parseDuration(text: string): number {
  const match = /^([0-9]{1,9})(ms|s|m|h)$/.exec(text);
  if (match === null) throw new UsageError(`--for takes a duration with a unit (30s, 10m, 1h), got ${JSON.stringify(text)}`);
  const ms = Number(match[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  if (ms < 1 || ms > DEFAULTS.admissionWindowMsMax) throw new UsageError(`--for must be between 1ms and ${DEFAULTS.admissionWindowMsMax / 60_000}m, got ${text}`);
  return ms;
}

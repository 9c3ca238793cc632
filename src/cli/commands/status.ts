// Commands that show the device: `status` and `members` (GET /status, read as the daemon's typed StatusView),
// `ready` (GET /readyz, with catch-up progress while waiting) and `audit` (GET /audit).
import type { AdmissionView, MemberView, StatusView } from '../../node/status-view.js';
import { type Api, type Values, failWith, query } from '../api.js';
import { UsageError, noArguments } from '../usage.js';

/** A count as text: 12,345. */
const count = (n: number | null): string => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n));

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

export async function status(api: Api, json: boolean, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const answer = await api.getJson<StatusView>('/status');
  if (!answer.ok) return failWith(answer.body);
  process.stdout.write(json ? `${JSON.stringify(answer.body, null, 2)}\n` : formatStatus(answer.body));
  return 0;
}

export async function members(api: Api, json: boolean, positionals: string[]): Promise<number> {
  noArguments(positionals);
  const answer = await api.getJson<StatusView>('/status');
  if (!answer.ok) return failWith(answer.body);
  const { body } = answer;
  const rows: Array<MemberView & { role: 'voter' | 'learner' }> = [
    ...body.voters.map((m) => ({ ...m, role: 'voter' as const })),
    ...body.learners.map((m) => ({ ...m, role: 'learner' as const })),
  ];
  if (json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  const table = [['PEER', 'ROLE', 'STATE', 'RTT', 'IN SYNC', 'LAST ROUND', 'KEYS DIFFERING']];
  for (const m of rows) {
    const sync = m.sync;
    table.push([
      `${m.peerId}${m.self ? ' (this device)' : ''}`,
      m.role,
      m.self ? 'self' : m.state,
      typeof m.rttMs === 'number' && !m.self ? `${m.rttMs} ms` : '-',
      m.self ? '-' : sync?.matched === true ? 'yes' : sync?.matched === false ? 'no' : 'unknown',
      typeof sync?.lastRoundAgoMs === 'number' ? `${(sync.lastRoundAgoMs / 1000).toFixed(1)} s ago` : '-',
      typeof sync?.keysDiffering === 'number' ? count(sync.keysDiffering) : '-',
    ]);
  }
  process.stdout.write(formatTable(table));
  return 0;
}

export async function ready(api: Api, values: Values, positionals: string[]): Promise<number> {
  noArguments(positionals);
  const timeoutText = values['timeout-ms'] as string | undefined;
  if (timeoutText !== undefined && !/^[1-9][0-9]{0,8}$/.test(timeoutText)) throw new UsageError(`--timeout-ms must be a positive integer, got ${JSON.stringify(timeoutText)}`);
  const deadline = performance.now() + (timeoutText === undefined ? 600_000 : Number(timeoutText));
  const tty = process.stderr.isTTY;
  for (;;) {
    const { ok, body } = await api.getJson<unknown>('/readyz');
    if (ok) {
      if (tty) process.stderr.write('\r\x1b[K');
      process.stdout.write('ready\n');
      return 0;
    }
    if (values.wait !== true || performance.now() > deadline) {
      if (tty) process.stderr.write('\r\x1b[K');
      process.stdout.write(`not ready: ${String(body.message ?? body.error)}\n`);
      return 1;
    }
    if (tty) {
      const answer = await api.getJson<StatusView>('/status');
      process.stderr.write(`\r\x1b[K${progressLine(answer.ok ? answer.body : undefined, String(body.message ?? ''))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export async function auditLog(api: Api, values: Values, positionals: string[]): Promise<number> {
  noArguments(positionals);
  const answer = await api.getJson<{ entries?: Array<Record<string, unknown>> }>(`/audit${query({ limit: values.limit, kind: values.kind })}`);
  if (!answer.ok) return failWith(answer.body);
  for (const entry of answer.body.entries ?? []) {
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify(entry)}\n`);
      continue;
    }
    const { at, kind, ...rest } = entry;
    const details = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    process.stdout.write(`${String(at)}  ${String(kind).padEnd(14)}  ${details}\n`);
  }
  return 0;
}

/** One line on the admission state of /status or POST /cluster/admit (`{}` there when this device has none). */
export function admissionLine(a: Partial<AdmissionView>): string {
  if (a.reason === 'window') return `open until ${String(a.until)} on this device (new devices join through it without approve; any removal closes it)`;
  if (a.reason === 'genesis') return 'open: no device was ever removed, so devices holding the cluster key join without approve';
  return 'closed: new devices wait for `quorumd approve PEER` (or `quorumd admit --for 10m`)';
}

/** One terminal line: catch-up progress when there is some, else why the device is not ready. */
function progressLine(status: StatusView | undefined, reason: string): string {
  const c = status?.catchUp;
  if (c === null || c === undefined) return `waiting: ${reason}`.slice(0, 120);
  const percent = typeof c.percent === 'number' ? c.percent : 0;
  const width = 30;
  const filled = Math.round((percent / 100) * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const rate = c.state === 'receiving' ? `${(c.bytesPerSec / 1e6).toFixed(1)} MB/s` : '';
  return `${c.state} ${bar} ${percent}%  ${count(c.keysHeld)}/${count(c.totalKeys)} keys  ${rate}`;
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return `${rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')}\n`;
}

function syncLine(s: StatusView): string {
  const ae = s.antiEntropy;
  const c = s.catchUp;
  const catching = c === null ? '' : `; ${c.state} ${count(c.keysHeld)}/${count(c.totalKeys)} keys`;
  return `${ae.converged ? 'converged' : 'not converged'} (${count(ae.rounds)} rounds, ${count(ae.keysRepaired)} keys repaired), ${count(ae.hints.queued)} hints queued, ${count(ae.tombstones.waiting)} tombstones waiting${catching}`;
}

function formatStatus(s: StatusView): string {
  const { quorum } = s;
  const lines = [
    `peer      ${s.peerId}`,
    `cluster   ${String(s.clusterId)}  epoch ${s.epoch}  role ${s.role}`,
    `quorum    ${quorum.writable ? 'writable' : 'NOT writable'} (${quorum.reachable}/${quorum.voters} voters alive, ${quorum.needed} needed)${quorum.joint === undefined ? '' : ' (voter change in progress)'}`,
    `keys      ${count(s.keys)} live, ${count(s.tombstones)} tombstones, ${mb(s.storage.bytes)} on disk`,
    `sync      ${syncLine(s)}`,
    `http      ${s.http}`,
    ...(s.admission === null ? [] : [`admission ${admissionLine(s.admission)}`]),
    `version   ${s.version}, up ${Math.round(s.uptimeMs / 1000)} s`,
    '',
  ];
  const listMembers = (title: string, members: readonly MemberView[]): void => {
    if (members.length === 0) return;
    lines.push(title);
    for (const v of members) {
      const state = v.self ? 'self' : v.state;
      const rtt = typeof v.rttMs === 'number' && !v.self ? `  rtt ${v.rttMs} ms` : '';
      lines.push(`  ${v.peerId}  ${state.padEnd(7)}  last seen ${v.lastSeen ?? 'never'}${rtt}`);
    }
  };
  listMembers('voters', s.voters);
  listMembers('learners', s.learners);
  if (s.pending.length > 0) {
    lines.push('pending (run `quorumd approve PEER`)');
    for (const p of s.pending) lines.push(`  ${p.peerId}  since ${p.since}`);
  }
  return `${lines.join('\n')}\n`;
}

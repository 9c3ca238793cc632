// The quorumd command line: `start` runs the daemon; put/get/del/status and the membership commands
// (approve/admit/remove/leave) talk to a running daemon's local HTTP API. Errors are one line on stderr and a non-zero exit (stack traces only with --debug).
import { mkdirSync, readFileSync } from 'node:fs';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULTS } from '../config/defaults.js';
import { TOKEN_FILE } from '../http/access.js';
import { CONFIG_FILE, SETTINGS, type SettingName, SettingsError, type TextValues, flagName, resolveSettings, settingsHelp } from '../config/settings.js';
import { VERSION } from '../node/version.js';

class UsageError extends Error {}

/** `start` takes every setting as a flag (booleans also as --no-NAME), plus --data-dir. */
function startOptions(): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = { 'data-dir': { type: 'string' } };
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const spec = SETTINGS[name];
    if (spec.kind === 'bool') {
      options[flagName(name)] = { type: 'boolean' };
      options[`no-${flagName(name)}`] = { type: 'boolean' };
    } else {
      options[flagName(name)] = { type: 'string', multiple: spec.kind === 'list' };
    }
  }
  return options;
}

const COMMANDS: Record<string, { usage: string; summary: string; options: NonNullable<ParseArgsConfig['options']> }> = {
  start: {
    usage: 'quorumd start [--data-dir DIR] [settings...]',
    summary: 'run a device (founds a cluster on first start in an empty data dir unless --join/--cluster-key)',
    options: startOptions(),
  },
  put: {
    usage: 'quorumd put KEY VALUE|- [--w one|quorum|all|N] [--context TOKEN]',
    summary: 'write a value ("-" reads it from stdin)',
    options: { w: { type: 'string' }, context: { type: 'string' } },
  },
  get: {
    usage: 'quorumd get KEY [--r one|quorum|all|N] [--resolve lww] [--json]',
    summary: 'read a value (siblings are listed when concurrent writes conflict)',
    options: { r: { type: 'string' }, resolve: { type: 'string' } },
  },
  del: {
    usage: 'quorumd del KEY [--w one|quorum|all|N] [--context TOKEN]',
    summary: 'delete a key (writes a tombstone)',
    options: { w: { type: 'string' }, context: { type: 'string' } },
  },
  status: { usage: 'quorumd status [--json]', summary: 'show this device\'s view of the cluster', options: {} },
  members: { usage: 'quorumd members [--json]', summary: 'list the members with liveness, round trip and sync state', options: {} },
  ls: {
    usage: 'quorumd ls [PREFIX] [--limit N] [--json]',
    summary: 'list keys (this device\'s replica) starting with PREFIX, in key order',
    options: { limit: { type: 'string' } },
  },
  watch: {
    usage: 'quorumd watch [PREFIX] [--json]',
    summary: 'print every change stored on this device (reconnects and resumes until interrupted)',
    options: {},
  },
  ready: {
    usage: 'quorumd ready [--wait] [--timeout-ms MS]',
    summary: 'say whether the device is ready (member, storage, quorum); --wait waits, showing catch-up progress on a terminal',
    options: { wait: { type: 'boolean' }, 'timeout-ms': { type: 'string' } },
  },
  audit: {
    usage: 'quorumd audit [--limit N] [--kind KIND] [--json]',
    summary: 'show the audit log: membership changes, operator actions, quorum failures, refused requests',
    options: { limit: { type: 'string' }, kind: { type: 'string' } },
  },
  approve: {
    usage: 'quorumd approve PEER',
    summary: 'admit a device waiting for approval (pending in quorumd status: after a removal, or with --no-auto-admit)',
    options: {},
  },
  admit: {
    usage: 'quorumd admit [--for DURATION | --close]',
    summary:
      'open this device\'s admission window (--for 10m by default, 1h at most; --close closes it): new devices holding the key join through it without approve until it ends or a device is removed',
    options: { for: { type: 'string' }, close: { type: 'boolean' } },
  },
  remove: {
    usage: 'quorumd remove PEER',
    summary: 'remove a dead or retired device; it is refused from then on, and new devices need approve or admit',
    options: {},
  },
  leave: { usage: 'quorumd leave', summary: 'remove this device from the cluster, then stop its daemon', options: {} },
  token: { usage: 'quorumd token [--data-dir DIR]', summary: 'print the API token (needed when the API listens beyond loopback)', options: {} },
  config: {
    usage: 'quorumd config [--data-dir DIR] [--json]',
    summary: 'show the settings `start` would use here, and where each comes from (default, file, env)',
    options: {},
  },
  init: {
    usage: 'quorumd init [--data-dir DIR]',
    summary: 'create a data dir with its device identity and API token (start does this too on first run)',
    options: {},
  },
  version: { usage: 'quorumd version', summary: 'print the version', options: {} },
};

const COMMON_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
  json: { type: 'boolean' },
  api: { type: 'string' },
  token: { type: 'string' },
};

function usage(): string {
  const lines = ['usage: quorumd <command> [options]', '', 'commands:'];
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)} ${command.summary}`);
  lines.push(
    '',
    'common options: --api URL (default: the daemon in --data-dir or $QUORUMD_API), --token TOKEN (default: $QUORUMD_TOKEN or the',
    "data dir's api.token), --data-dir DIR (default: $QUORUMD_DATA_DIR or ./data), --json, --debug, --help",
  );
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return main(['version']);
  const command = COMMANDS[name];
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)} (see quorumd --help)`);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...COMMON_OPTIONS, ...command.options, ...(name === 'start' ? {} : { 'data-dir': { type: 'string' } }) },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (usage: ${command.usage})`);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values.help === true) {
    const settings =
      name === 'start'
        ? `\n\nsettings (flag, environment variable, meaning); precedence: defaults < DATA_DIR/${CONFIG_FILE} < environment < flags:\n${settingsHelp()}\n`
        : '\n';
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}${settings}`);
    return 0;
  }
  debug = values.debug === true;
  switch (name) {
    case 'start':
      return start(values, parsed.positionals);
    case 'version':
      process.stdout.write(`quorumd ${VERSION}\n`);
      return 0;
    case 'token':
    case 'init':
      return local(name, values, parsed.positionals);
    case 'config':
      return showConfig(values, parsed.positionals);
    default:
      return client(name, values, parsed.positionals);
  }
}

let debug = false;

async function start(values: Record<string, unknown>, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dataDir = (values['data-dir'] as string | undefined) ?? process.env.QUORUMD_DATA_DIR ?? DEFAULTS.dataDir;
  const flags: Record<string, TextValues[SettingName]> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const flag = flagName(name);
    if (values[`no-${flag}`] === true) {
      if (values[flag] === true) throw new UsageError(`--${flag} and --no-${flag} contradict each other`);
      flags[name] = false;
    } else if (values[flag] !== undefined) {
      flags[name] = values[flag] as TextValues[SettingName];
    }
  }
  let resolved;
  try {
    resolved = resolveSettings({ dataDir, env: process.env, flags });
  } catch (error) {
    if (error instanceof SettingsError) throw new UsageError(error.message);
    throw error;
  }
  const { settings } = resolved;
  // Loaded here, not at the top: client commands then start in ~100 ms instead of loading libp2p.
  const { Daemon } = await import('../app/daemon.js');
  const daemon = await Daemon.start({
    dataDir,
    // Listening addresses given nowhere: the daemon reuses the ones it recorded, else the default.
    listen: resolved.sources.listen === 'default' ? undefined : settings.listen,
    http: settings.http,
    join: settings.join,
    clusterKeyFile: settings.clusterKey,
    mdns: settings.mdns,
    logLevel: settings.logLevel,
    requestTimeoutMs: settings.requestTimeoutMs,
    autoAdmit: settings.autoAdmit,
    maxVoters: settings.maxVoters,
    autoRemoveAfterMs: settings.autoRemoveAfterMs,
    antiEntropyIntervalMs: settings.antiEntropyIntervalMs,
    antiEntropyBytesPerSec: settings.antiEntropyBytesPerSec,
    tombstoneGraceMs: settings.tombstoneGraceMs,
  });
  await new Promise<void>(() => {
    // `quorumd leave`: once removed, the daemon asks to exit like on SIGTERM.
    void daemon.exitRequested.then(() => onSignal('SIGTERM'));
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      const force = setTimeout(() => {
        process.stderr.write(`quorumd: shutdown after ${signal} took too long; exiting\n`);
        process.exit(1);
      }, 4_500);
      force.unref();
      daemon.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`quorumd: error during shutdown: ${String(error)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return 0;
}

function dataDirOf(values: Record<string, unknown>): string {
  return (values['data-dir'] as string | undefined) ?? process.env.QUORUMD_DATA_DIR ?? DEFAULTS.dataDir;
}

/** Commands on the data dir itself (no daemon needed). */
async function local(name: 'token' | 'init', values: Record<string, unknown>, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dataDir = resolvePath(dataDirOf(values));
  const { loadOrCreateToken, readToken } = await import('../http/access.js');
  if (name === 'token') {
    const token = readToken(dataDir);
    if (token === undefined) throw new Error(`no API token in ${dataDir} yet (run quorumd init or start)`);
    process.stdout.write(`${token}\n`);
    return 0;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  loadOrCreateToken(dataDir);
  const { loadOrCreateIdentity } = await import('../net/identity.js');
  const identity = await loadOrCreateIdentity(dataDir);
  const out = { dataDir, peerId: identity.peerId, token: joinPath(dataDir, TOKEN_FILE), config: joinPath(dataDir, CONFIG_FILE) };
  process.stdout.write(
    values.json === true
      ? `${JSON.stringify(out)}\n`
      : `initialised ${dataDir}\n  peer ID   ${out.peerId}\n  API token ${out.token} (quorumd token prints it)\n  settings  ${out.config} (optional; see quorumd start --help)\nnext: quorumd start --data-dir ${dataDir}\n`,
  );
  return 0;
}

/** The effective settings of `start` in this data dir and environment (flags aside), with their sources. */
function showConfig(values: Record<string, unknown>, positionals: string[]): number {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  let resolved;
  try {
    resolved = resolveSettings({ dataDir: dataDirOf(values), env: process.env, flags: {} });
  } catch (error) {
    if (error instanceof SettingsError) throw new UsageError(error.message);
    throw error;
  }
  const { settings, sources, file } = resolved;
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify({ file: file ?? null, settings, sources })}\n`);
    return 0;
  }
  const rows = (Object.keys(SETTINGS) as SettingName[]).map((name) => {
    const value = settings[name];
    const text = value === undefined || (Array.isArray(value) && value.length === 0) ? '-' : Array.isArray(value) ? value.join(',') : String(value);
    return [name, text, sources[name]];
  });
  const width = Math.max(...rows.map((r) => (r[0] ?? '').length));
  const valueWidth = Math.max(...rows.map((r) => (r[1] ?? '').length));
  for (const [name, value, source] of rows) process.stdout.write(`${(name ?? '').padEnd(width)}  ${(value ?? '').padEnd(valueWidth)}  ${source ?? ''}\n`);
  process.stdout.write(`(config file: ${file ?? `none (${joinPath(dataDirOf(values), CONFIG_FILE)})`}; flags of quorumd start override all of these)\n`);
  return 0;
}

/** The API token to send: --token, $QUORUMD_TOKEN, or the data dir's (if readable). */
function tokenOf(values: Record<string, unknown>): string | undefined {
  const explicit = (values.token as string | undefined) ?? process.env.QUORUMD_TOKEN;
  if (explicit !== undefined && explicit !== '') return explicit;
  try {
    return readFileSync(joinPath(dataDirOf(values), TOKEN_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined; // not readable here: requests go without (fine on loopback)
  }
}

/** The local API endpoint: --api, $QUORUMD_API, the daemon.json of --data-dir / $QUORUMD_DATA_DIR, or the default. */
function apiBase(values: Record<string, unknown>): string {
  const explicit = (values.api as string | undefined) ?? process.env.QUORUMD_API;
  if (explicit !== undefined) return explicit.replace(/\/+$/, '');
  const dataDir = dataDirOf(values);
  try {
    const daemon = JSON.parse(readFileSync(joinPath(dataDir, 'daemon.json'), 'utf8')) as { http?: string };
    if (typeof daemon.http === 'string') return daemon.http;
  } catch {
    // no running daemon recorded there: fall back to the default address
  }
  return `http://${DEFAULTS.http}`;
}

async function client(name: string, values: Record<string, unknown>, positionals: string[]): Promise<number> {
  const base = apiBase(values);
  apiToken = tokenOf(values);
  const json = values.json === true;
  switch (name) {
    case 'members':
      return members(base, json, positionals);
    case 'ls':
      return list(base, values, positionals);
    case 'watch':
      return watchChanges(base, json, positionals);
    case 'ready':
      return ready(base, values, positionals);
    case 'audit':
      return auditLog(base, values, positionals);
  }
  if (name === 'status') {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const res = await request(base, 'GET', '/status');
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) return failWith(body);
    process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : formatStatus(body));
    return 0;
  }
  if (name === 'admit') {
    noArguments(positionals);
    if (values.close === true && values.for !== undefined) throw new UsageError(`--for and --close contradict each other (usage: ${COMMANDS.admit?.usage})`);
    const forMs = values.close === true ? 0 : values.for === undefined ? DEFAULTS.admissionWindowMsDefault : parseDuration(String(values.for));
    const payload = new TextEncoder().encode(JSON.stringify({ forMs }));
    const res = await request(base, 'POST', '/cluster/admit', payload, { 'Content-Type': 'application/json' });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) return failWith(body);
    process.stdout.write(json ? `${JSON.stringify(body)}\n` : `${admissionLine(body)}\n`);
    return 0;
  }
  if (name === 'approve' || name === 'remove' || name === 'leave') {
    const wanted = name === 'leave' ? 0 : 1;
    if (positionals.length < wanted) throw new UsageError(`missing PEER (usage: ${COMMANDS[name]?.usage})`);
    if (positionals.length > wanted) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[wanted])}`);
    const payload = name === 'leave' ? new Uint8Array() : new TextEncoder().encode(JSON.stringify({ peer: positionals[0] }));
    const res = await request(base, 'POST', `/cluster/${name}`, payload, { 'Content-Type': 'application/json' });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) return failWith(body);
    const voters = (body.voters ?? []) as string[];
    const learners = (body.learners ?? []) as string[];
    process.stdout.write(json ? `${JSON.stringify(body)}\n` : `ok: epoch ${String(body.epoch)}, ${voters.length} voter(s), ${learners.length} learner(s)\n`);
    return 0;
  }
  const key = positionals[0];
  if (key === undefined || key.length === 0) throw new UsageError(`missing KEY (usage: ${COMMANDS[name]?.usage})`);
  const path = `/kv/${encodeURIComponent(key)}`;
  const headers: Record<string, string> = {};
  if (typeof values.context === 'string') headers['X-Causal-Context'] = values.context;
  if (name === 'get') {
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    const res = await request(base, 'GET', `${path}${query({ r: values.r, resolve: values.resolve })}`);
    if (res.status === 200) {
      const value = new Uint8Array(await res.arrayBuffer());
      if (json) {
        process.stdout.write(`${JSON.stringify({ value: Buffer.from(value).toString('utf8'), context: res.headers.get('x-causal-context') })}\n`);
      } else {
        process.stdout.write(value);
        if (process.stdout.isTTY) process.stdout.write('\n');
      }
      return 0;
    }
    const body = (await res.json()) as Record<string, unknown>;
    if (res.status === 300) {
      process.stdout.write(`${JSON.stringify(body, null, json ? 0 : 2)}\n`);
      return 0;
    }
    return failWith(body);
  }
  let body: Uint8Array | undefined;
  if (name === 'put') {
    const value = positionals[1];
    if (value === undefined) throw new UsageError(`missing VALUE (usage: ${COMMANDS.put?.usage})`);
    if (positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[2])}`);
    body = value === '-' ? await readStdin(DEFAULTS.valueBytesMax) : new TextEncoder().encode(value);
  } else if (positionals.length > 1) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  }
  const res = await request(base, name === 'put' ? 'PUT' : 'DELETE', `${path}${query({ w: values.w })}`, body, headers);
  const result = (await res.json()) as Record<string, unknown>;
  if (!res.ok) return failWith(result);
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `ok (${String(result.acks)}/${String(result.required)} acks) context=${String(result.context)}\n`);
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

/** One line on the admission state of /status or POST /cluster/admit. */
function admissionLine(a: Record<string, unknown>): string {
  if (a.reason === 'window') return `open until ${String(a.until)} on this device (new devices join through it without approve; any removal closes it)`;
  if (a.reason === 'genesis') return 'open: no device was ever removed, so devices holding the cluster key join without approve';
  return 'closed: new devices wait for `quorumd approve PEER` (or `quorumd admit --for 10m`)';
}

function noArguments(positionals: string[], max = 0): void {
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`);
}

async function getJson(base: string, path: string): Promise<{ ok: boolean; status: number; body: Record<string, unknown> }> {
  const res = await request(base, 'GET', path);
  const body = (await res.json()) as Record<string, unknown>;
  return { ok: res.ok, status: res.status, body };
}

/** A count as text: 12,345. */
const count = (n: unknown): string => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n));

async function members(base: string, json: boolean, positionals: string[]): Promise<number> {
  noArguments(positionals);
  const { ok, body } = await getJson(base, '/status');
  if (!ok) return failWith(body);
  const rows: Array<Record<string, unknown>> = [
    ...((body.voters ?? []) as Array<Record<string, unknown>>).map((m) => ({ ...m, role: 'voter' })),
    ...((body.learners ?? []) as Array<Record<string, unknown>>).map((m) => ({ ...m, role: 'learner' })),
  ];
  if (json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  const table = [['PEER', 'ROLE', 'STATE', 'RTT', 'IN SYNC', 'LAST ROUND', 'KEYS DIFFERING']];
  for (const m of rows) {
    const sync = (m.sync ?? {}) as Record<string, unknown>;
    table.push([
      `${String(m.peerId)}${m.self === true ? ' (this device)' : ''}`,
      String(m.role),
      m.self === true ? 'self' : String(m.state),
      typeof m.rttMs === 'number' && m.self !== true ? `${m.rttMs} ms` : '-',
      m.self === true ? '-' : sync.matched === true ? 'yes' : sync.matched === false ? 'no' : 'unknown',
      typeof sync.lastRoundAgoMs === 'number' ? `${(sync.lastRoundAgoMs / 1000).toFixed(1)} s ago` : '-',
      typeof sync.keysDiffering === 'number' ? count(sync.keysDiffering) : '-',
    ]);
  }
  process.stdout.write(formatTable(table));
  return 0;
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return `${rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n')}\n`;
}

async function list(base: string, values: Record<string, unknown>, positionals: string[]): Promise<number> {
  noArguments(positionals, 1);
  const limitText = values.limit as string | undefined;
  if (limitText !== undefined && !/^[1-9][0-9]{0,8}$/.test(limitText)) throw new UsageError(`--limit must be a positive integer, got ${JSON.stringify(limitText)}`);
  const limit = limitText === undefined ? Infinity : Number(limitText);
  const prefix = positionals[0] ?? '';
  let cursor: string | null = null;
  let shown = 0;
  do {
    const page = Math.min(1000, limit - shown);
    const { ok, body } = await getJson(base, `/kv${query({ prefix: prefix === '' ? undefined : prefix, limit: String(page), cursor: cursor ?? undefined })}`);
    if (!ok) return failWith(body);
    for (const k of (body.keys ?? []) as Array<{ key: string; siblings: number }>) {
      process.stdout.write(values.json === true ? `${JSON.stringify(k)}\n` : `${k.key}${k.siblings > 1 ? `  (${k.siblings} siblings)` : ''}\n`);
      shown += 1;
    }
    cursor = (body.cursor as string | null | undefined) ?? null;
  } while (cursor !== null && shown < limit);
  return 0;
}

async function watchChanges(base: string, json: boolean, positionals: string[]): Promise<number> {
  noArguments(positionals, 1);
  const prefix = positionals[0];
  const path = `/watch${query({ prefix })}`;
  let lastId: string | undefined;
  const tty = process.stderr.isTTY;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = apiToken === undefined ? {} : { Authorization: `Bearer ${apiToken}` };
    if (lastId !== undefined) headers['Last-Event-ID'] = lastId;
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { headers });
    } catch (error) {
      if (attempt === 0) {
        throw new Error(`cannot reach the quorumd API at ${base} (${String((error as { cause?: { code?: string } }).cause?.code ?? error)}); is the daemon running?`, { cause: error });
      }
      if (tty) process.stderr.write('\rreconnecting...');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    if (!res.ok) return failWith((await res.json()) as Record<string, unknown>);
    if (tty) process.stderr.write(`\rwatching ${prefix === undefined ? 'every key' : `keys starting with ${JSON.stringify(prefix)}`} (Ctrl-C to stop)\n`);
    let buffer = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of block.split('\n')) {
            const at = line.indexOf(': ');
            if (at > 0) fields.set(line.slice(0, at), line.slice(at + 2));
          }
          const id = fields.get('id');
          if (id !== undefined) lastId = id;
          const data = fields.get('data');
          if (data === undefined) continue;
          if (fields.get('event') === 'reset') {
            process.stderr.write('note: some changes were missed while disconnected (list the keys again)\n');
            continue;
          }
          if (json) {
            process.stdout.write(`${data}\n`);
          } else {
            const e = JSON.parse(data) as { key: string; kind: string; siblings: number; at: string };
            process.stdout.write(`${e.at}  ${e.kind.padEnd(8)}  ${e.key}${e.siblings > 1 ? `  (${e.siblings} siblings)` : ''}\n`);
          }
        }
      }
    } catch {
      // the connection dropped: reconnect below and resume after lastId
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function ready(base: string, values: Record<string, unknown>, positionals: string[]): Promise<number> {
  noArguments(positionals);
  const timeoutText = values['timeout-ms'] as string | undefined;
  if (timeoutText !== undefined && !/^[1-9][0-9]{0,8}$/.test(timeoutText)) throw new UsageError(`--timeout-ms must be a positive integer, got ${JSON.stringify(timeoutText)}`);
  const deadline = performance.now() + (timeoutText === undefined ? 600_000 : Number(timeoutText));
  const tty = process.stderr.isTTY;
  for (;;) {
    const { ok, body } = await getJson(base, '/readyz');
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
      const status = await getJson(base, '/status');
      process.stderr.write(`\r\x1b[K${progressLine(status.body, String(body.message ?? ''))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** One terminal line: catch-up progress when there is some, else why the device is not ready. */
function progressLine(status: Record<string, unknown>, reason: string): string {
  const c = status.catchUp as Record<string, unknown> | null | undefined;
  if (c === null || c === undefined) return `waiting: ${reason}`.slice(0, 120);
  const percent = typeof c.percent === 'number' ? c.percent : 0;
  const width = 30;
  const filled = Math.round((percent / 100) * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const rate = typeof c.bytesPerSec === 'number' ? `${(c.bytesPerSec / 1e6).toFixed(1)} MB/s` : '';
  return `${String(c.state)} ${bar} ${percent}%  ${count(c.keysHeld)}/${count(c.totalKeys)} keys  ${rate}`;
}

async function auditLog(base: string, values: Record<string, unknown>, positionals: string[]): Promise<number> {
  noArguments(positionals);
  const { ok, body } = await getJson(base, `/audit${query({ limit: values.limit, kind: values.kind })}`);
  if (!ok) return failWith(body);
  for (const entry of (body.entries ?? []) as Array<Record<string, unknown>>) {
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

function query(params: Record<string, unknown>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string') search.set(k, v);
  const text = search.toString();
  return text.length > 0 ? `?${text}` : '';
}

let apiToken: string | undefined;

async function request(base: string, method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  const auth: Record<string, string> = apiToken === undefined ? {} : { Authorization: `Bearer ${apiToken}` };
  try {
    return await fetch(`${base}${path}`, { method, body, headers: { ...headers, ...auth }, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new Error(`cannot reach the quorumd API at ${base} (${cause}); is the daemon running?`, { cause: error });
  }
}

function failWith(body: Record<string, unknown>): number {
  process.stderr.write(`quorumd: ${String(body.error ?? 'error')}: ${String(body.message ?? JSON.stringify(body))}\n`);
  return 1;
}

const mb = (bytes: unknown): string => (typeof bytes === 'number' ? `${(bytes / 1e6).toFixed(1)} MB` : '?');

function syncLine(s: Record<string, unknown>): string {
  const ae = (s.antiEntropy ?? {}) as Record<string, unknown>;
  const hints = (ae.hints ?? {}) as Record<string, unknown>;
  const tombstones = (ae.tombstones ?? {}) as Record<string, unknown>;
  const c = s.catchUp as Record<string, unknown> | null | undefined;
  const catching = c === null || c === undefined ? '' : `; ${String(c.state)} ${count(c.keysHeld)}/${count(c.totalKeys)} keys`;
  return `${ae.converged === true ? 'converged' : 'not converged'} (${count(ae.rounds)} rounds, ${count(ae.keysRepaired)} keys repaired), ${count(hints.queued)} hints queued, ${count(tombstones.waiting)} tombstones waiting${catching}`;
}

function formatStatus(s: Record<string, unknown>): string {
  const quorum = (s.quorum ?? {}) as Record<string, unknown>;
  const lines = [
    `peer      ${String(s.peerId)}`,
    `cluster   ${String(s.clusterId)}  epoch ${String(s.epoch)}  role ${String(s.role)}`,
    `quorum    ${quorum.writable === true ? 'writable' : 'NOT writable'} (${String(quorum.reachable)}/${String(quorum.voters)} voters alive, ${String(quorum.needed)} needed)${quorum.joint === undefined ? '' : ' (voter change in progress)'}`,
    `keys      ${count(s.keys)} live, ${count(s.tombstones)} tombstones, ${mb((s.storage as Record<string, unknown> | undefined)?.bytes)} on disk`,
    `sync      ${syncLine(s)}`,
    `http      ${String(s.http)}`,
    ...(s.admission === undefined || s.admission === null ? [] : [`admission ${admissionLine(s.admission as Record<string, unknown>)}`]),
    `version   ${String(s.version)}, up ${typeof s.uptimeMs === 'number' ? `${Math.round(s.uptimeMs / 1000)} s` : '?'}`,
    '',
  ];
  const listMembers = (title: string, members: Array<Record<string, unknown>>): void => {
    if (members.length === 0) return;
    lines.push(title);
    for (const v of members) {
      const state = v.self === true ? 'self' : String(v.state);
      const rtt = typeof v.rttMs === 'number' && v.self !== true ? `  rtt ${v.rttMs} ms` : '';
      lines.push(`  ${String(v.peerId)}  ${state.padEnd(7)}  last seen ${String(v.lastSeen ?? 'never')}${rtt}`);
    }
  };
  listMembers('voters', (s.voters ?? []) as Array<Record<string, unknown>>);
  listMembers('learners', (s.learners ?? []) as Array<Record<string, unknown>>);
  const pending = (s.pending ?? []) as Array<Record<string, unknown>>;
  if (pending.length > 0) {
    lines.push('pending (run `quorumd approve PEER`)');
    for (const p of pending) lines.push(`  ${String(p.peerId)}  since ${String(p.since)}`);
  }
  return `${lines.join('\n')}\n`;
}

async function readStdin(bytesMax: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > bytesMax) throw new UsageError(`the value on stdin exceeds ${bytesMax} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`quorumd: ${message}\n`);
    if (debug && error instanceof Error && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);

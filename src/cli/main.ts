// The quorumd command line: `start` runs the daemon; put/get/del/status and the membership commands
// (approve/remove/leave) talk to a running daemon's local HTTP API. Errors are one line on stderr and a non-zero exit (stack traces only with --debug).
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
  approve: { usage: 'quorumd approve PEER', summary: 'admit a device waiting for approval (started members with --no-auto-admit)', options: {} },
  remove: { usage: 'quorumd remove PEER', summary: 'remove a dead or retired device; it is refused from then on', options: {} },
  leave: { usage: 'quorumd leave', summary: 'remove this device from the cluster, then stop its daemon', options: {} },
  token: { usage: 'quorumd token [--data-dir DIR]', summary: 'print the API token (needed when the API listens beyond loopback)', options: {} },
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
  const { Daemon } = await import('../node/daemon.js');
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
    catchUpBytesPerSec: settings.catchUpBytesPerSec,
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
  if (name === 'status') {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const res = await request(base, 'GET', '/status');
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) return failWith(body);
    process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : formatStatus(body));
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

function formatStatus(s: Record<string, unknown>): string {
  const quorum = (s.quorum ?? {}) as Record<string, unknown>;
  const lines = [
    `peer      ${String(s.peerId)}`,
    `cluster   ${String(s.clusterId)}  epoch ${String(s.epoch)}  role ${String(s.role)}`,
    `quorum    ${quorum.writable === true ? 'writable' : 'NOT writable'} (${String(quorum.reachable)}/${String(quorum.voters)} voters alive, ${String(quorum.needed)} needed)${quorum.joint === undefined ? '' : ' (voter change in progress)'}`,
    `keys      ${String(s.keys)}`,
    `http      ${String(s.http)}`,
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

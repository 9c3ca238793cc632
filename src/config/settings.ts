// The daemon's settings: one table naming each setting's flag, environment variable, schema and what it allows.
// resolveSettings() layers DEFAULTS < the config file in the data dir < QUORUMD_* environment < flags, and
// validates every layer with zod; an invalid setting names the setting, its source, the value and what is allowed.
import { readFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { z } from 'zod';
import { DEFAULTS, tombstoneGraceMinMs } from './defaults.js';
import { CONFIG_FILE } from './files.js';

/** The optional configuration file, in the data dir (JSON; keys are the setting names below). */
export { CONFIG_FILE };

/** Largest config file read (it holds a few dozen settings). */
const CONFIG_FILE_BYTES_MAX = 64 * 1024;

export class SettingsError extends Error {
  override name = 'SettingsError';
}

type Kind = 'int' | 'bool' | 'string' | 'list';

interface SettingSpec<T> {
  readonly kind: Kind;
  readonly schema: z.ZodType<T>;
  /** What is allowed, for error messages and `--help`. */
  readonly allowed: string;
  readonly summary: string;
}

const int = (min: number, max: number, unit: string, summary: string): SettingSpec<number> => ({
  kind: 'int',
  schema: z.number().int().min(min).max(max),
  allowed: `an integer of ${unit} from ${min} to ${max}`,
  summary,
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const MULTIADDR = z.string().min(1).max(256).regex(/^\/[^\s]+$/, 'a multiaddr starts with /');

/** Every setting of `quorumd start` (the data dir itself comes only from --data-dir / QUORUMD_DATA_DIR). */
export const SETTINGS = {
  listen: {
    kind: 'list',
    schema: z.array(MULTIADDR).min(1).max(16),
    allowed: '1 to 16 multiaddrs such as /ip4/0.0.0.0/tcp/7400',
    summary: 'libp2p listen addresses',
  } satisfies SettingSpec<string[]>,
  http: {
    kind: 'string',
    schema: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'HOST:PORT'),
    allowed: 'HOST:PORT, e.g. 127.0.0.1:7401 (a non-loopback address requires the API token)',
    summary: 'local HTTP API and status page',
  } satisfies SettingSpec<string>,
  join: {
    kind: 'list',
    schema: z.array(MULTIADDR).max(16),
    allowed: 'up to 16 multiaddrs of members to join through',
    summary: 'members to join through (besides mDNS)',
  } satisfies SettingSpec<string[]>,
  clusterKey: {
    kind: 'string',
    schema: z.string().min(1).max(4096),
    allowed: 'the path of a cluster key file',
    summary: 'cluster key of an existing cluster to join',
  } satisfies SettingSpec<string>,
  mdns: { kind: 'bool', schema: z.boolean(), allowed: 'true or false', summary: 'discover devices on the LAN with mDNS' } satisfies SettingSpec<boolean>,
  autoAdmit: {
    kind: 'bool',
    schema: z.boolean(),
    allowed: 'true or false',
    summary: 'admit new devices holding the cluster key without operator approval until a device is first removed (then: quorumd approve, or quorumd admit --for)',
  } satisfies SettingSpec<boolean>,
  maxVoters: int(1, 99, 'voters', 'voters at most; further devices join as learners'),
  autoRemoveAfterMs: int(0, 365 * 24 * 3600 * 1000, 'milliseconds', 'remove a voter down this long (0: never)'),
  requestTimeoutMs: int(1, 3_600_000, 'milliseconds', 'deadline of a client read or write'),
  antiEntropyIntervalMs: int(1, 3_600_000, 'milliseconds', 'mean time between anti-entropy rounds'),
  antiEntropyBytesPerSec: int(1, 2 ** 40, 'bytes per second', 'byte budget of anti-entropy rounds'),
  tombstoneGraceMs: int(
    0,
    365 * 24 * 3600 * 1000,
    'milliseconds',
    `minimum age of a tombstone before its purge; at least max(${DEFAULTS.writeWaitMsMax}, requestTimeoutMs) + ${DEFAULTS.tombstoneGraceMarginMs}`,
  ),
  logLevel: {
    kind: 'string',
    schema: z.enum(LOG_LEVELS),
    allowed: LOG_LEVELS.join(', '),
    summary: 'log level',
  } satisfies SettingSpec<string>,
} as const;

export type SettingName = keyof typeof SETTINGS;

export interface Settings {
  listen: readonly string[];
  http: string;
  join: readonly string[];
  clusterKey: string | undefined;
  mdns: boolean;
  autoAdmit: boolean;
  maxVoters: number;
  autoRemoveAfterMs: number;
  requestTimeoutMs: number;
  antiEntropyIntervalMs: number;
  antiEntropyBytesPerSec: number;
  tombstoneGraceMs: number;
  logLevel: string;
}

function defaults(): Settings {
  return {
    listen: DEFAULTS.listen,
    http: DEFAULTS.http,
    join: [],
    clusterKey: undefined,
    mdns: true,
    autoAdmit: DEFAULTS.autoAdmit,
    maxVoters: DEFAULTS.maxVoters,
    autoRemoveAfterMs: DEFAULTS.autoRemoveAfterMs,
    requestTimeoutMs: DEFAULTS.requestTimeoutMs,
    antiEntropyIntervalMs: DEFAULTS.antiEntropyIntervalMs,
    antiEntropyBytesPerSec: DEFAULTS.antiEntropyBytesPerSec,
    tombstoneGraceMs: DEFAULTS.tombstoneGraceMs,
    logLevel: DEFAULTS.logLevel,
  };
}

/** `antiEntropyIntervalMs` -> `anti-entropy-interval-ms`. */
export function flagName(name: SettingName): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `antiEntropyIntervalMs` -> `QUORUMD_ANTI_ENTROPY_INTERVAL_MS`. */
export function envName(name: SettingName): string {
  return `QUORUMD_${flagName(name).replace(/-/g, '_').toUpperCase()}`;
}

/** Where a value came from, for error messages and `quorumd config`. */
export type Source = 'default' | 'file' | 'env' | 'flag';

export interface ResolvedSettings {
  readonly settings: Settings;
  readonly sources: Readonly<Record<SettingName, Source>>;
  /** The config file read, if there was one. */
  readonly file: string | undefined;
}

/** Values given as text (environment, flags): lists are repeated flags or comma-separated variables. */
export type TextValues = Partial<Record<SettingName, string | readonly string[] | boolean>>;

export interface SettingsInput {
  readonly dataDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly flags: TextValues;
}

/** Layers defaults < config file < environment < flags; throws SettingsError naming the bad setting. */
export function resolveSettings(input: SettingsInput): ResolvedSettings {
  const settings = defaults() as unknown as Record<SettingName, unknown>;
  const sources = Object.fromEntries(Object.keys(SETTINGS).map((n) => [n, 'default'])) as Record<SettingName, Source>;
  const path = joinPath(input.dataDir, CONFIG_FILE);
  const fileValues = readConfigFile(path);
  for (const [name, value] of Object.entries(fileValues ?? {})) {
    const setting = name as SettingName;
    settings[setting] = validate(setting, value, `${path}`, JSON.stringify(value));
    sources[setting] = 'file';
  }
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const text = input.env[envName(name)];
    if (text === undefined || text === '') continue;
    settings[name] = validate(name, fromText(name, text, envName(name)), envName(name), JSON.stringify(text));
    sources[name] = 'env';
  }
  for (const [name, value] of Object.entries(input.flags)) {
    if (value === undefined) continue;
    const setting = name as SettingName;
    if (!(setting in SETTINGS)) throw new SettingsError(`unknown setting ${name}`);
    const flag = `--${flagName(setting)}`;
    const parsed = typeof value === 'boolean' ? value : fromText(setting, value, flag);
    settings[setting] = validate(setting, parsed, flag, JSON.stringify(value));
    sources[setting] = 'flag';
  }
  checkTombstoneGrace(settings as unknown as Settings, sources, path);
  return { settings: settings as unknown as Settings, sources, file: fileValues === undefined ? undefined : path };
}

/**
 * A tombstone purged while an operation that began before the delete can still send the old record brings the
 * key back (DEFAULTS.tombstoneGraceMs): a grace below tombstoneGraceMinMs is refused. The default grace is
 * raised to it instead when only requestTimeoutMs was set that high.
 */
function checkTombstoneGrace(settings: Settings, sources: Readonly<Record<SettingName, Source>>, path: string): void {
  const min = tombstoneGraceMinMs(settings.requestTimeoutMs);
  if (settings.tombstoneGraceMs >= min) return;
  if (sources.tombstoneGraceMs === 'default') {
    settings.tombstoneGraceMs = min;
    return;
  }
  const name: SettingName = 'tombstoneGraceMs';
  const from = { default: 'the default', file: path, env: envName(name), flag: `--${flagName(name)}` }[sources.tombstoneGraceMs];
  const allowed =
    `at least ${min} ms: the longest operation deadline, max(${DEFAULTS.writeWaitMsMax} ms wait, requestTimeoutMs ${settings.requestTimeoutMs} ms), ` +
    `plus ${DEFAULTS.tombstoneGraceMarginMs} ms; a shorter grace lets a write still in flight bring a deleted key back`;
  throw invalid(name, from, String(settings.tombstoneGraceMs), allowed);
}

function readConfigFile(path: string): Record<string, unknown> | undefined {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > CONFIG_FILE_BYTES_MAX) throw new SettingsError(`${path}: larger than ${CONFIG_FILE_BYTES_MAX} bytes`);
    text = bytes.toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof SettingsError) throw error;
    throw new SettingsError(`${path}: cannot read (${(error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SettingsError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SettingsError(`${path}: expected a JSON object of settings, e.g. {"maxVoters": 3}`);
  }
  for (const name of Object.keys(parsed)) {
    if (!(name in SETTINGS)) throw new SettingsError(`${path}: unknown setting ${JSON.stringify(name)} (known: ${Object.keys(SETTINGS).join(', ')})`);
  }
  return parsed as Record<string, unknown>;
}

/** Converts environment or flag text to the setting's type (validation comes after). */
function fromText(name: SettingName, value: string | readonly string[], source: string): unknown {
  const spec = SETTINGS[name];
  const texts = typeof value === 'string' ? [value] : value;
  const last = texts[texts.length - 1] ?? '';
  switch (spec.kind) {
    case 'list':
      return texts.flatMap((t) => (source.startsWith('QUORUMD_') ? t.split(',') : [t])).map((t) => t.trim()).filter((t) => t !== '');
    case 'int':
      if (!/^[0-9]{1,16}$/.test(last)) throw invalid(name, source, JSON.stringify(last), spec.allowed);
      return Number(last);
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(last)) return true;
      if (/^(false|0|no|off)$/i.test(last)) return false;
      throw invalid(name, source, JSON.stringify(last), spec.allowed);
    case 'string':
      return last;
    default: {
      // src/config imports no other layer (so not core/assert's unreachable): the same exhaustiveness check.
      const unhandled: never = spec;
      throw new Error(`unreachable: setting kind of ${JSON.stringify(unhandled)}`);
    }
  }
}

function validate(name: SettingName, value: unknown, source: string, shown: string): unknown {
  const spec = SETTINGS[name] as SettingSpec<unknown>;
  const result = spec.schema.safeParse(value);
  if (!result.success) throw invalid(name, source, shown, spec.allowed);
  return result.data;
}

function invalid(name: SettingName, source: string, shown: string, allowed: string): SettingsError {
  const value = shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
  return new SettingsError(`invalid setting ${name} = ${value} (from ${source}): allowed is ${allowed}`);
}

/** One line per setting for `quorumd start --help`: flag, variable, what is allowed. */
export function settingsHelp(): string {
  return (Object.keys(SETTINGS) as SettingName[])
    .map((name) => {
      const spec = SETTINGS[name];
      const flag = spec.kind === 'bool' ? `--${flagName(name)} / --no-${flagName(name)}` : `--${flagName(name)}`;
      return `  ${flag.padEnd(36)} ${envName(name).padEnd(36)} ${spec.summary} (${spec.allowed})`;
    })
    .join('\n');
}

// The CLI's command table (usage line, summary, flags of each command) and the top-level help text.
import type { ParseArgsConfig } from 'node:util';
import { SETTINGS, type SettingName, flagName } from '../config/settings.js';

/** Wrong arguments: printed with the usage hint, exit code 2. */
export class UsageError extends Error {}

export type CommandOptions = NonNullable<ParseArgsConfig['options']>;

/** `start` takes every setting as a flag (booleans also as --no-NAME), plus --data-dir. */
function startOptions(): CommandOptions {
  const options: CommandOptions = { 'data-dir': { type: 'string' } };
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

export const COMMANDS: Record<string, { usage: string; summary: string; options: CommandOptions }> = {
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

export const COMMON_OPTIONS: CommandOptions = {
  help: { type: 'boolean', short: 'h' },
  debug: { type: 'boolean' },
  json: { type: 'boolean' },
  api: { type: 'string' },
  token: { type: 'string' },
};

export function usage(): string {
  const lines = ['usage: quorumd <command> [options]', '', 'commands:'];
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)} ${command.summary}`);
  lines.push(
    '',
    'common options: --api URL (default: the daemon in --data-dir or $QUORUMD_API), --token TOKEN (default: $QUORUMD_TOKEN or the',
    "data dir's api.token), --data-dir DIR (default: $QUORUMD_DATA_DIR or ./data), --json, --debug, --help",
  );
  return lines.join('\n');
}

export function noArguments(positionals: string[], max = 0): void {
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`);
}

// The quorumd command line: `start` runs the daemon; put/get/del/status and the membership commands
// (approve/admit/remove/leave) talk to a running daemon's local HTTP API. Errors are one line on stderr and a non-zero exit (stack traces only with --debug).
// The commands live in src/cli/commands/ (their table in usage.ts); this module parses and dispatches.
import { parseArgs } from 'node:util';
import { CONFIG_FILE, settingsHelp } from '../config/settings.js';
import { VERSION } from '../node/version.js';
import { Api, type Values } from './api.js';
import { admit, change } from './commands/cluster.js';
import { keyValue, list, watchChanges } from './commands/kv.js';
import { local, showConfig } from './commands/local.js';
import { start } from './commands/start.js';
import { auditLog, members, ready, status } from './commands/status.js';
import { COMMANDS, COMMON_OPTIONS, UsageError, usage } from './usage.js';

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

/** The commands that talk to a running daemon. */
async function client(name: string, values: Values, positionals: string[]): Promise<number> {
  const api = new Api(values);
  const json = values.json === true;
  switch (name) {
    case 'members':
      return members(api, json, positionals);
    case 'ls':
      return list(api, values, positionals);
    case 'watch':
      return watchChanges(api, json, positionals);
    case 'ready':
      return ready(api, values, positionals);
    case 'audit':
      return auditLog(api, values, positionals);
    case 'status':
      return status(api, json, positionals);
    case 'admit':
      return admit(api, values, positionals, json);
    case 'approve':
    case 'remove':
    case 'leave':
      return change(api, name, positionals, json);
    case 'get':
    case 'put':
    case 'del':
      return keyValue(api, name, values, positionals, json);
  }
  throw new UsageError(`unknown command ${JSON.stringify(name)} (see quorumd --help)`);
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

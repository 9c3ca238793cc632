// Commands on the data dir itself, no daemon needed: `token`, `init` and `config` (the settings `start` would use).
import { mkdirSync } from 'node:fs';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import { CONFIG_FILE, SETTINGS, type SettingName, SettingsError, resolveSettings } from '../../config/settings.js';
import { TOKEN_FILE } from '../../config/files.js';
import { dataDirOf, type Values } from '../api.js';
import { UsageError } from '../usage.js';

/** `token` prints the API token; `init` creates the data dir with its identity and token. */
export async function local(name: 'token' | 'init', values: Values, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dataDir = resolvePath(dataDirOf(values));
  const { loadOrCreateToken, readToken } = await import('../../http/access.js');
  if (name === 'token') {
    const token = readToken(dataDir);
    if (token === undefined) throw new Error(`no API token in ${dataDir} yet (run quorumd init or start)`);
    process.stdout.write(`${token}\n`);
    return 0;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  loadOrCreateToken(dataDir);
  const { loadOrCreateIdentity } = await import('../../net/identity.js');
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
export function showConfig(values: Values, positionals: string[]): number {
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

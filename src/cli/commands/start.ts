// `quorumd start`: resolves the settings (defaults < config file < environment < flags), runs the daemon
// (src/app) and stops it cleanly on SIGTERM/SIGINT or after `quorumd leave`.
import { SETTINGS, type SettingName, SettingsError, type TextValues, flagName, resolveSettings } from '../../config/settings.js';
import { dataDirOf, type Values } from '../api.js';
import { UsageError } from '../usage.js';

export async function start(values: Values, positionals: string[]): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const dataDir = dataDirOf(values);
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
  const { Daemon } = await import('../../app/daemon.js');
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

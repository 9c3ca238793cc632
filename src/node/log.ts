// Structured JSON logging (pino) for the daemon: JSON lines for journald and log tools; on a terminal, readable
// lines (pino-pretty). QUORUMD_LOG_FORMAT=json|pretty overrides the choice; the level comes from the settings.
import { createRequire } from 'node:module';
import { pino } from 'pino';

export type Logger = pino.Logger;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(level: string | undefined, format = process.env.QUORUMD_LOG_FORMAT): Logger {
  const chosen = level ?? process.env.QUORUMD_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(chosen)) throw new Error(`log level must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(chosen)}`);
  if (format !== undefined && format !== 'json' && format !== 'pretty') throw new Error(`QUORUMD_LOG_FORMAT must be json or pretty, got ${JSON.stringify(format)}`);
  const options = { name: 'quorumd', level: chosen, base: { pid: process.pid } };
  const pretty = format === 'pretty' || (format === undefined && process.stdout.isTTY === true);
  if (!pretty) return pino(options);
  // Loaded only for a terminal (it is not needed, nor bundled, for the JSON case).
  const require = createRequire(import.meta.url);
  const prettyStream = require('pino-pretty') as (opts: object) => NodeJS.WritableStream;
  return pino(options, prettyStream({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', sync: true }));
}

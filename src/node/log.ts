// Structured JSON logging (pino) for the daemon; the level comes from the flag or QUORUMD_LOG_LEVEL.
import { pino } from 'pino';

export type Logger = pino.Logger;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(level: string | undefined): Logger {
  const chosen = level ?? process.env.QUORUMD_LOG_LEVEL ?? 'info';
  if (!LEVELS.includes(chosen)) throw new Error(`log level must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(chosen)}`);
  return pino({ name: 'quorumd', level: chosen, base: { pid: process.pid } });
}

// Spawning `bin/quorumd` daemons for system tests: every child is tracked and killed (SIGKILL) in cleanup,
// also when a test fails; readiness is read from <data-dir>/daemon.json.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { waitFor } from './wait.js';
import { DAEMON_FILE } from '../../src/config/files.js';

export const BIN = resolve(import.meta.dirname, '../../bin/quorumd');

export interface DaemonInfo {
  pid: number;
  peerId: string;
  http: string;
  listen: string[];
}

export interface DeviceProcess {
  child: ChildProcess;
  dataDir: string;
  info: DaemonInfo;
  output: () => string;
}

const children = new Set<ChildProcess>();

export async function spawnDevice(dataDir: string, args: string[], readyTimeoutMs = 20_000): Promise<DeviceProcess> {
  await rm(join(dataDir, DAEMON_FILE), { force: true });
  const child = spawn(process.execPath, [BIN, 'start', '--data-dir', dataDir, '--http', '127.0.0.1:0', '--no-mdns', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, QUORUMD_LOG_LEVEL: 'info' },
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-200_000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-200_000)));
  const info = await waitFor(
    `daemon in ${dataDir} to be ready`,
    async () => {
      if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${output.slice(-2000)}`);
      const parsed = JSON.parse(await readFile(join(dataDir, DAEMON_FILE), 'utf8')) as DaemonInfo;
      return parsed.pid === child.pid ? parsed : undefined;
    },
    readyTimeoutMs,
  );
  return { child, dataDir, info, output: () => output };
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `argv` to completion (SIGKILL after `timeoutMs`, then rejects) and returns its exit code and output.
 * `onSpawn` lets the caller track the child for cleanup.
 */
export function runProcess(
  argv: readonly string[],
  opts: { timeoutMs: number; input?: string; onSpawn?: (child: ChildProcess) => void },
): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('empty argv');
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    opts.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')} did not finish in ${opts.timeoutMs} ms; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-500)}`));
    }, opts.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close' (not 'exit'): all output has been read.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // EPIPE when the command does not read its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a CLI command to completion and returns its exit code and output. */
export function runCli(args: string[], input?: string, timeoutMs = 20_000): Promise<ExecResult> {
  return runProcess([process.execPath, BIN, ...args], {
    timeoutMs,
    input,
    onSpawn: (child) => {
      children.add(child);
      child.once('exit', () => children.delete(child));
    },
  });
}

export function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise(code);
    });
  });
}

export function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

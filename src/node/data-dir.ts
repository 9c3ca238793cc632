// The data dir's files and the store's start-up meta: cluster key checks, daemon.json, the dot actor's
// incarnation, the store id, the stored membership and acceptor state, and StartupError for what is wrong there.
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, copyFile, rename, rm, writeFile } from 'node:fs/promises';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import { equals as equalBytes } from 'uint8arrays';
import { CLUSTER_KEY_FILE, DAEMON_FILE, DATABASE_FILE, databaseFiles } from '../config/files.js';
import { type MembershipConfig, NO_CONFIG } from '../core/membership.js';
import type { AcceptorState } from '../core/paxos.js';
import { createClusterKey, readClusterKey } from '../net/clusterkey.js';
import { META, META_ADDRESS_BOOK, META_CLEAN_SHUTDOWN, META_LISTEN, type MetaEntry, MetaDecodeError, readMeta, writeMeta } from '../storage/meta.js';
import type { StoragePort } from '../storage/port.js';

/** Bad flags or data-dir state: the CLI prints the message and exits non-zero. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

// The file names live in src/config/files.ts, the meta names and their codecs in src/storage/meta.ts.
export { CLUSTER_KEY_FILE, DAEMON_FILE, DATABASE_FILE, META_ADDRESS_BOOK, META_CLEAN_SHUTDOWN, META_LISTEN };
/** First incarnation of a fresh store: random in [2^20, 2^40) so a wiped device never reuses an actor (kv679). */
const FRESH_INCARNATION_MIN = 2 ** 20;
const FRESH_INCARNATION_SPAN = 2 ** 40 - 2 ** 20;

/**
 * Puts the cluster key in place (copied from --cluster-key, or created when founding) and reads it. Founding:
 * a fresh data dir started without --cluster-key and without --join.
 */
export async function prepareClusterKey(
  dataDir: string,
  options: { readonly clusterKeyFile: string | undefined; readonly join: readonly string[] },
): Promise<{ clusterKey: Uint8Array; founding: boolean }> {
  const keyPath = joinPath(dataDir, CLUSTER_KEY_FILE);
  const dbPath = joinPath(dataDir, DATABASE_FILE);
  const freshDataDir = !existsSync(keyPath) && !existsSync(dbPath);
  if (options.clusterKeyFile !== undefined) {
    const given = resolvePath(options.clusterKeyFile);
    const givenKey = await readClusterKey(given); // validates before copying
    if (!existsSync(keyPath)) {
      await copyFile(given, keyPath);
      await chmod(keyPath, 0o600);
    } else if (!equalBytes(await readClusterKey(keyPath), givenKey)) {
      throw new StartupError(`${keyPath} holds a different cluster key than ${given}`);
    }
  } else if (options.join.length > 0 && !existsSync(keyPath)) {
    throw new StartupError('--join needs --cluster-key FILE (a copy of a member\'s cluster.key)');
  }
  const founding = freshDataDir && options.clusterKeyFile === undefined && options.join.length === 0;
  if (founding) await createClusterKey(keyPath);
  return { clusterKey: await readClusterKey(keyPath), founding };
}

/** What daemon.json says: how to reach the running daemon (the CLI and the test helpers read it). */
export interface DaemonFile {
  readonly pid: number;
  readonly peerId: string;
  readonly http: string;
  readonly listen: readonly string[];
}

export async function writeDaemonFile(dataDir: string, body: DaemonFile): Promise<void> {
  const path = joinPath(dataDir, DAEMON_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 }); // like every file of the data dir
  await rename(tmp, path);
}

export async function removeDaemonFile(dataDir: string): Promise<void> {
  await rm(joinPath(dataDir, DAEMON_FILE), { force: true });
}

/**
 * The actor name for this run's dots. After an unclean stop, writes that were staged but not yet durable may
 * have reached other replicas and then been lost here; a version vector entry (peer, n) would claim we had
 * seen them, so later writes would silently supersede them. A fresh incarnation `peer~k` avoids that claim.
 * A clean stop flushed everything, so the same actor continues. A fresh store may belong to a device whose
 * data was wiped (same peer ID, dots already issued): its first incarnation is random, never `peer` or `peer~1`.
 */
export async function nextDotActor(store: StoragePort, peerId: string, random: () => number = Math.random): Promise<string> {
  const stored = readStartupMeta(store, META.incarnation, (problem) => problem);
  let incarnation = stored ?? FRESH_INCARNATION_MIN + Math.floor(random() * FRESH_INCARNATION_SPAN);
  if (stored !== undefined && readMeta(store, META.cleanShutdown) !== true) incarnation += 1;
  await Promise.all([writeMeta(store, META.incarnation, incarnation), writeMeta(store, META.cleanShutdown, false)]);
  return incarnation === 0 ? peerId : `${peerId}~${incarnation}`;
}

/**
 * This store's id (see MemberInfo.store), created with the store. A store from before store ids that holds a
 * membership keeps its seats (legacySeat): they were given to this very store.
 */
export async function loadOrCreateStoreId(store: StoragePort, config: MembershipConfig): Promise<{ storeId: string; legacySeat: boolean }> {
  const stored = readStartupMeta(store, META.storeId, (problem) => problem);
  if (stored !== undefined) return { storeId: stored, legacySeat: false };
  const storeId = randomBytes(16).toString('hex');
  await writeMeta(store, META.storeId, storeId);
  return { storeId, legacySeat: config.epoch > 0 };
}

export function loadMembership(store: StoragePort): MembershipConfig {
  return readStartupMeta(store, META.membership, (problem) => `stored membership is invalid: ${problem}`) ?? NO_CONFIG;
}

export function loadAcceptor(store: StoragePort): AcceptorState | undefined {
  return readStartupMeta(store, META.acceptor, () => 'stored membership acceptor state is invalid');
}

/** readMeta at start-up: an unreadable value is a StartupError with the message `describe(problem)`. */
function readStartupMeta<T>(store: StoragePort, entry: MetaEntry<T>, describe: (problem: string) => string): T | undefined {
  try {
    return readMeta(store, entry);
  } catch (error) {
    if (error instanceof MetaDecodeError) throw new StartupError(describe(error.problem));
    throw error;
  }
}

/** Bytes of the SQLite database files (main, WAL, shared memory) in `dataDir`. */
export function databaseBytes(dataDir: string): number {
  let bytes = 0;
  for (const file of databaseFiles()) {
    try {
      bytes += statSync(joinPath(dataDir, file)).size;
    } catch {
      // absent (no WAL right now): nothing to count
    }
  }
  return bytes;
}

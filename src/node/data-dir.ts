// The data dir's files and the store's start-up meta: cluster key checks, daemon.json, the dot actor's
// incarnation, the store id, the stored membership and acceptor state, and StartupError for what is wrong there.
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, copyFile, rename, rm, writeFile } from 'node:fs/promises';
import { join as joinPath, resolve as resolvePath } from 'node:path';
import { equals as equalBytes } from 'uint8arrays';
import { type MembershipConfig, NO_CONFIG, configProblem } from '../core/membership.js';
import type { AcceptorState } from '../core/paxos.js';
import { createClusterKey, readClusterKey } from '../net/clusterkey.js';
import type { StoragePort } from '../storage/port.js';
import { META_ACCEPTOR, META_MEMBERSHIP } from './runtime.js';

/** Bad flags or data-dir state: the CLI prints the message and exits non-zero. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

export const CLUSTER_KEY_FILE = 'cluster.key';
export const DATABASE_FILE = 'quorumd.db';
export const DAEMON_FILE = 'daemon.json';
export const META_ADDRESS_BOOK = 'addressBook';
/** The concrete listen addresses (ports resolved) of the last start, reused when --listen is not given. */
export const META_LISTEN = 'listen';
/** Dot-actor incarnation, and whether the last run closed the store cleanly (see nextDotActor). */
const META_INCARNATION = 'incarnation';
export const META_CLEAN_SHUTDOWN = 'cleanShutdown';
/** This store's id (MemberInfo.store): random, taken when the store is created, never changed. */
const META_STORE_ID = 'storeId';
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
  const stored = store.getMeta(META_INCARNATION);
  let incarnation = stored === undefined ? FRESH_INCARNATION_MIN + Math.floor(random() * FRESH_INCARNATION_SPAN) : Number(stored);
  if (!Number.isSafeInteger(incarnation) || incarnation < 0) throw new StartupError(`corrupt incarnation ${JSON.stringify(stored)}`);
  if (stored !== undefined && store.getMeta(META_CLEAN_SHUTDOWN) !== 'true') incarnation += 1;
  await Promise.all([store.setMeta(META_INCARNATION, String(incarnation)), store.setMeta(META_CLEAN_SHUTDOWN, 'false')]);
  return incarnation === 0 ? peerId : `${peerId}~${incarnation}`;
}

/**
 * This store's id (see MemberInfo.store), created with the store. A store from before store ids that holds a
 * membership keeps its seats (legacySeat): they were given to this very store.
 */
export async function loadOrCreateStoreId(store: StoragePort, config: MembershipConfig): Promise<{ storeId: string; legacySeat: boolean }> {
  const stored = store.getMeta(META_STORE_ID);
  if (stored !== undefined) {
    if (!/^[0-9a-f]{32}$/.test(stored)) throw new StartupError(`corrupt store id ${JSON.stringify(stored)}`);
    return { storeId: stored, legacySeat: false };
  }
  const storeId = randomBytes(16).toString('hex');
  await store.setMeta(META_STORE_ID, storeId);
  return { storeId, legacySeat: config.epoch > 0 };
}

export function loadMembership(store: StoragePort): MembershipConfig {
  const text = store.getMeta(META_MEMBERSHIP);
  if (text === undefined) return NO_CONFIG;
  // Configurations written before joint phases existed have no previousVoters.
  const config = { previousVoters: [], ...(JSON.parse(text) as Partial<MembershipConfig>) } as MembershipConfig;
  const problem = configProblem(config);
  if (problem !== undefined) throw new StartupError(`stored membership is invalid: ${problem}`);
  return config;
}

export function loadAcceptor(store: StoragePort): AcceptorState | undefined {
  const text = store.getMeta(META_ACCEPTOR);
  if (text === undefined) return undefined;
  const state = JSON.parse(text) as AcceptorState;
  if (!Number.isSafeInteger(state.slot) || typeof state.promised?.round !== 'number') {
    throw new StartupError('stored membership acceptor state is invalid');
  }
  return state;
}

/** Bytes of the SQLite database files (main, WAL, shared memory) in `dataDir`. */
export function databaseBytes(dataDir: string): number {
  let bytes = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      bytes += statSync(joinPath(dataDir, `${DATABASE_FILE}${suffix}`)).size;
    } catch {
      // absent (no WAL right now): nothing to count
    }
  }
  return bytes;
}

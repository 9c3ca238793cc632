// The names of the files in a device's data dir, in one place: every module that opens one of them (and the tests
// and tools that look inside a data dir) takes its name from here.

/** The device identity: the Ed25519 key whose peer ID names the device (mode 0600; src/net/identity.ts). */
export const PEER_KEY_FILE = 'peer.key';
/** The cluster's shared secret, bound into the Noise handshake (mode 0600; src/net/clusterkey.ts). */
export const CLUSTER_KEY_FILE = 'cluster.key';
/** The SQLite store (mode 0600; src/storage/sqlite.ts). */
export const DATABASE_FILE = 'quorumd.db';
/** Suffixes of the files SQLite keeps beside the database (write-ahead log, shared memory). */
export const DATABASE_SIDE_FILE_SUFFIXES = ['-wal', '-shm'] as const;
/** The running daemon's addresses (HTTP API, libp2p), written on start and removed on a clean stop. */
export const DAEMON_FILE = 'daemon.json';
/** The local API's bearer token (mode 0600; src/http/access.ts); `quorumd token` prints it. */
export const TOKEN_FILE = 'api.token';
/** The append-only audit log (src/node/audit.ts); rotated to AUDIT_FILE + AUDIT_ROTATED_SUFFIX. */
export const AUDIT_FILE = 'audit.log';
/** Suffix of the one rotated audit log kept (audit.log.1). */
export const AUDIT_ROTATED_SUFFIX = '.1';
/** The optional configuration file (JSON; keys are setting names; src/config/settings.ts). */
export const CONFIG_FILE = 'quorumd.json';

/** The database and the files SQLite keeps beside it: all of the store's bytes on disk. */
export function databaseFiles(): string[] {
  return [DATABASE_FILE, ...DATABASE_SIDE_FILE_SUFFIXES.map((suffix) => `${DATABASE_FILE}${suffix}`)];
}

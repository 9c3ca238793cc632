// The cluster key: a 32-byte secret shared by every device of one cluster, kept in the libp2p v1 swarm-key file
// format (three lines). Creates it (mode 0600) and reads it back with clear errors for missing or malformed
// files. What it protects: the connection handshake (handshake.ts binds it into Noise).
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ClusterKeyError } from './errors.js';
import { createFileDurably, errnoCode } from './files.js';

const HEADER_LINE = '/key/swarm/psk/1.0.0/';
const ENCODING_LINE = '/base16/';
const KEY_HEX_CHARS = 64;
/** Bytes of a v1 swarm key file: two header lines and 64 hex digits. */
export const CLUSTER_KEY_BYTES = HEADER_LINE.length + 1 + ENCODING_LINE.length + 1 + KEY_HEX_CHARS;
/** Bytes of the secret itself. */
export const CLUSTER_SECRET_BYTES = KEY_HEX_CHARS / 2;

/** A fresh random cluster key in swarm-key file format. */
export function generateClusterKey(): Uint8Array {
  return new TextEncoder().encode(`${HEADER_LINE}\n${ENCODING_LINE}\n${randomBytes(CLUSTER_SECRET_BYTES).toString('hex')}`);
}

/** The 32-byte secret of a cluster key (swarm-key file bytes); throws ClusterKeyError when malformed. */
export function clusterKeySecret(clusterKey: Uint8Array): Uint8Array {
  const canonical = new TextDecoder().decode(parseClusterKey(clusterKey));
  return Uint8Array.from(Buffer.from(canonical.slice(canonical.lastIndexOf('\n') + 1), 'hex'));
}

/** Creates a new cluster key file (mode 0600); fails if the file already exists. Returns the key. */
export async function createClusterKey(path: string): Promise<Uint8Array> {
  const key = generateClusterKey();
  try {
    await createFileDurably(path, key);
  } catch (err) {
    const why = errnoCode(err) === 'EEXIST' ? 'already exists (refusing to overwrite)' : `cannot create (${err instanceof Error ? err.message : String(err)})`;
    throw new ClusterKeyError(path, why);
  }
  return key;
}

/** Reads and validates a cluster key file; returns it in canonical form. */
export async function readClusterKey(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const why = errnoCode(err) === 'ENOENT' ? 'does not exist (copy the cluster key from an existing device)' : `cannot read (${err instanceof Error ? err.message : String(err)})`;
    throw new ClusterKeyError(path, why);
  }
  return parseClusterKey(bytes, path);
}

/** Validates swarm-key bytes (trailing whitespace and CRLF tolerated); throws ClusterKeyError. */
export function parseClusterKey(bytes: Uint8Array, source = '<memory>'): Uint8Array {
  if (bytes.length > 4 * CLUSTER_KEY_BYTES) throw new ClusterKeyError(source, `too large (${bytes.length} bytes) for a swarm key`);
  const lines = new TextDecoder().decode(bytes).trim().split(/\r?\n/);
  if (lines.length !== 3) throw new ClusterKeyError(source, `expected 3 lines (${HEADER_LINE}, ${ENCODING_LINE}, key), found ${lines.length}`);
  const [header, encoding, hex] = lines as [string, string, string];
  if (header !== HEADER_LINE) throw new ClusterKeyError(source, `first line must be ${HEADER_LINE}`);
  if (encoding !== ENCODING_LINE) throw new ClusterKeyError(source, `second line must be ${ENCODING_LINE} (only base16 keys are supported)`);
  if (!new RegExp(`^[0-9a-fA-F]{${KEY_HEX_CHARS}}$`).test(hex)) {
    throw new ClusterKeyError(source, `third line must be ${KEY_HEX_CHARS} hexadecimal digits (a 32-byte key)`);
  }
  return new TextEncoder().encode(`${HEADER_LINE}\n${ENCODING_LINE}\n${hex.toLowerCase()}`);
}

/**
 * The mDNS service name of a cluster: derived from the key, so two clusters on one LAN do not answer each
 * other (and devices without the key learn nothing about it from the name: a one-way hash, truncated).
 */
export function mdnsServiceTag(clusterKey: Uint8Array): string {
  const digest = createHash('sha256').update('quorumd mdns service v1\n').update(clusterKey).digest('hex');
  return `_qd-${digest.slice(0, 12)}._udp.local`;
}

// The device identity: a persistent Ed25519 key at <dataDir>/peer.key (protobuf-marshaled, mode 0600)
// whose libp2p peer ID is the device's name in the cluster.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { IdentityError } from './errors.js';
import { PEER_KEY_FILE } from '../config/files.js';
import { createFileDurably, errnoCode } from './files.js';

export { PEER_KEY_FILE };

export interface Identity {
  readonly privateKey: PrivateKey;
  /** The peer ID string (base58 multihash, e.g. 12D3KooW...). */
  readonly peerId: string;
}

/** Loads <dataDir>/peer.key, or creates it (and dataDir, mode 0700) on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<Identity> {
  const path = join(dataDir, PEER_KEY_FILE);
  const existing = await readIfExists(path);
  if (existing !== undefined) return identityFrom(path, existing);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const privateKey = await generateKeyPair('Ed25519');
  try {
    await createFileDurably(path, privateKeyToProtobuf(privateKey));
  } catch (err) {
    // Another process created it first: use that one, so both agree on the identity.
    if (errnoCode(err) === 'EEXIST') return loadOrCreateIdentity(dataDir);
    throw new IdentityError(path, `cannot create (${err instanceof Error ? err.message : String(err)})`);
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() };
}

function identityFrom(path: string, bytes: Uint8Array): Identity {
  let privateKey: PrivateKey;
  try {
    privateKey = privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw new IdentityError(path, `not a protobuf-encoded private key (${err instanceof Error ? err.message : String(err)})`);
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString() };
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new IdentityError(path, `cannot read (${err instanceof Error ? err.message : String(err)})`);
  }
}

// The ConfigAuth port of the core (src/core/config-proof.ts) on the devices' libp2p identities: a device signs its
// Paxos accepts with its Ed25519 peer key, and verifies another device's signature with the public key its peer
// ID embeds (an Ed25519 peer ID is the identity multihash of the public key), so no key is ever distributed.
// Ed25519 signatures are deterministic; node:crypto signs and verifies synchronously.
import { type KeyObject, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { ConfigAuth } from '../core/config-proof.js';

/** DER prefixes wrapping a raw Ed25519 seed (PKCS#8) and public key (SPKI), RFC 8410. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_SEED_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** Public keys remembered (peer ID -> key): voters of recent epochs, a handful; bounded against strangers. */
const PUBLIC_KEYS_CACHED_MAX = 256;

export function configAuth(privateKey: PrivateKey): ConfigAuth {
  if (privateKey.type !== 'Ed25519') throw new Error(`peer keys must be Ed25519 (this one is ${privateKey.type})`);
  const seed = privateKey.raw.subarray(0, ED25519_SEED_BYTES);
  const signingKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const keys = new Map<string, KeyObject | null>();
  const publicKeyOf = (peerId: string): KeyObject | null => {
    const cached = keys.get(peerId);
    if (cached !== undefined) return cached;
    let key: KeyObject | null = null;
    try {
      const id = peerIdFromString(peerId);
      if (id.type === 'Ed25519') key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, id.publicKey.raw]), format: 'der', type: 'spki' });
    } catch {
      key = null; // not a peer ID: nothing it signs verifies
    }
    if (keys.size >= PUBLIC_KEYS_CACHED_MAX) keys.clear();
    keys.set(peerId, key);
    return key;
  };
  return {
    sign: (payload) => sign(null, payload, signingKey).toString('base64'),
    verify: (peerId, payload, signature) => {
      const key = publicKeyOf(peerId);
      if (key === null) return false;
      const bytes = Buffer.from(signature, 'base64');
      if (bytes.length !== ED25519_SIGNATURE_BYTES) return false;
      try {
        return verify(null, payload, key, bytes);
      } catch {
        return false;
      }
    },
  };
}

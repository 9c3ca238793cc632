// Ed25519 peer keys for tests of configuration proofs and seat claims: a peer ID with the signer and verifier the
// daemon builds from its key (src/node/config-auth.ts), and a configuration signed by one acceptor alone.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { type ConfigAuth, acceptPayload } from '../../src/core/config-proof.js';
import type { MembershipConfig } from '../../src/core/membership.js';
import { configAuth } from '../../src/node/config-auth.js';

export interface Key {
  readonly id: string;
  readonly auth: ConfigAuth;
}

export async function newKey(): Promise<Key> {
  const privateKey = await generateKeyPair('Ed25519');
  return { id: peerIdFromPrivateKey(privateKey).toString(), auth: configAuth(privateKey) };
}

export async function newKeys(n: number): Promise<Key[]> {
  return Promise.all(Array.from({ length: n }, () => newKey()));
}

/** `config` with a proof of `signer`'s accept alone at ballot `round` (what one voter can sign by itself). */
export function signedBy(config: MembershipConfig, signer: Key, round = 99): MembershipConfig {
  const ballot = { round, proposer: signer.id };
  return { ...config, proof: { ballot, signatures: [{ peerId: signer.id, signature: signer.auth.sign(acceptPayload(config, ballot)) }] } };
}

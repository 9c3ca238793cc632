// The cluster-key-bound connection handshake: Noise XX whose prologue is derived from the cluster key, under
// quorumd's own protocol ID, so only devices holding the same key complete it. Owns the refusal of devices
// without the key (a typed error, a rate-limited log line).
//
// Why not @libp2p/pnet (the private-network protector used before): it never finalized its two xsalsa20 ciphers
// per connection, and those live in one WASM memory shared by the process and capped at 64 MiB — 128 B kept per
// connection, ~512k short connections and the daemon died of an uncaught RangeError. Finalizing on close fixes
// that one leak (measured: bounded), but keeps a module-global WASM allocator on every byte of every connection
// (already patched once for a memory-growth bug) and a wrong key still produces garbage that multistream-select may
// read as a long length prefix: the dial and the responder's pending-upgrade slot then wait for the timeout
// (measured median 6 s with libp2p's dial timeout, vs 42 ms here). A Noise prologue mismatch fails the AEAD check
// of the second handshake message, one round trip in, with a precise error, and there is no per-connection
// cipher state beyond Noise's own. Cost: a device without the key learns the responder's peer ID (also public
// in mDNS answers) and costs it one X25519 handshake (bounded by the per-IP connection rate, node.ts).
// Figures: scripts/measure-handshake.mjs.
import { createHash } from 'node:crypto';
import { noise } from '@chainsafe/libp2p-noise';
import type { ConnectionEncrypter, MessageStream, SecureConnectionOptions, SecuredConnection } from '@libp2p/interface';
import { clusterKeySecret } from './clusterkey.js';
import { ClusterKeyMismatchError } from './errors.js';

/**
 * The handshake's protocol ID (negotiated by multistream-select before Noise starts). Versioned: a change of
 * handshake (what the prologue binds, the cipher suite) gets a new ID, so mismatched versions are refused at
 * negotiation ("protocol selection failed") instead of failing somewhere inside the handshake.
 */
export const HANDSHAKE_PROTOCOL = '/quorumd/noise-cluster/1.0.0';

/** At most one log line about refused handshakes per this many ms (a stranger redialing must not flood the log). */
export const HANDSHAKE_REFUSAL_LOG_INTERVAL_MS = 60_000;

/** The Noise prologue of a cluster: a one-way hash of the key and the handshake version (never sent). */
export function clusterPrologue(clusterKey: Uint8Array): Uint8Array {
  return createHash('sha256').update(`quorumd noise prologue ${HANDSHAKE_PROTOCOL}\n`).update(clusterKeySecret(clusterKey)).digest();
}

export interface HandshakeRefusal {
  readonly direction: 'inbound' | 'outbound';
  readonly remoteAddr: string;
  /** True when the prologues were seen to differ; false for an inbound handshake the peer dropped. */
  readonly keyMismatch: boolean;
  readonly message: string;
}

/**
 * True when a Noise failure means the two sides' prologues differ: the first encrypted payload (the
 * responder's static key at stage 1, the initiator's at stage 2) fails its AEAD check. Other failures
 * (timeouts, resets, a malformed first message) keep their own error.
 */
function isPrologueMismatch(err: unknown): boolean {
  return err instanceof Error && /handshake stage [12] validation fail/.test(err.message);
}

type NoiseComponents = Parameters<ReturnType<typeof noise>>[0];

/**
 * The connection encrypter of a cluster. `onRefused` hears each handshake refused for a key mismatch (the error
 * thrown to libp2p, and so a dialer's DialError, is then a ClusterKeyMismatchError) and each inbound handshake
 * the peer dropped.
 */
export function clusterNoise(clusterKey: Uint8Array, onRefused?: (refusal: HandshakeRefusal) => void): (components: NoiseComponents) => ConnectionEncrypter {
  const prologueBytes = clusterPrologue(clusterKey);
  const report = (refusal: HandshakeRefusal): void => {
    try {
      onRefused?.(refusal);
    } catch {
      // a failing log sink must not change how the handshake fails
    }
  };
  return (components) => {
    const inner = noise({ prologueBytes })(components);
    const secure = async (direction: 'inbound' | 'outbound', connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> => {
      try {
        return await (direction === 'inbound' ? inner.secureInbound(connection, options) : inner.secureOutbound(connection, options));
      } catch (err) {
        const remoteAddr = remoteAddrOf(connection);
        if (isPrologueMismatch(err)) {
          const error = new ClusterKeyMismatchError(remoteAddr, { cause: err });
          report({ direction, remoteAddr, keyMismatch: true, message: error.message });
          throw error;
        }
        // A dialer without our key fails on our first message and drops the connection: as responder we only
        // see it reset (the mismatch is in the dialer's log). Still worth a line here.
        if (direction === 'inbound') {
          const why = err instanceof Error ? err.message : String(err);
          report({ direction, remoteAddr, keyMismatch: false, message: `handshake with ${remoteAddr} dropped by the peer (${why}): most often a device without this cluster key` });
        }
        throw err;
      }
    };
    return {
      protocol: HANDSHAKE_PROTOCOL,
      secureInbound: (connection, options) => secure('inbound', connection, options),
      secureOutbound: (connection, options) => secure('outbound', connection, options),
    };
  };
}

function remoteAddrOf(connection: MessageStream): string {
  const addr = (connection as { remoteAddr?: { toString(): string } }).remoteAddr;
  return addr === undefined ? 'unknown address' : addr.toString();
}

/**
 * A log sink for refusals: the first one at once, then at most one line per interval with the count since
 * (a device without the key redialing once a second writes one line a minute). `nowMs` is injectable for tests.
 */
export function refusalLogger(log: (obj: object, msg: string) => void, nowMs: () => number = () => performance.now()): (refusal: HandshakeRefusal) => void {
  let lastLogMs = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  return (refusal) => {
    unlogged += 1;
    const now = nowMs();
    if (now - lastLogMs < HANDSHAKE_REFUSAL_LOG_INTERVAL_MS) return;
    lastLogMs = now;
    log({ remoteAddr: refusal.remoteAddr, direction: refusal.direction, keyMismatch: refusal.keyMismatch, refused: unlogged }, refusal.message);
    unlogged = 0;
  };
}

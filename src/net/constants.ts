// Protocol identifiers, limits and network defaults for the replica transport, each with its reason.
import { DEFAULTS } from '../config/defaults.js';
import { FRAME_BYTES_MAX } from '../wire/replica.js';
export { FRAME_BYTES_MAX, FRAME_MESSAGES_MAX } from '../wire/replica.js';

/**
 * Bytes of partial inbound frames one connection may hold (all its replica and sync streams together). A
 * member sends one frame at a time per stream and uses one replica and one sync stream (plus, briefly, one
 * being replaced): three frames of the largest size. A peer announcing large frames on many streams is reset
 * once it has actually sent this much, instead of each announced length being allocated up front.
 */
export const FRAME_BUFFER_BYTES_PER_CONNECTION_MAX = 3 * FRAME_BYTES_MAX;
/**
 * Bytes of partial inbound frames the whole node may hold: 16 full frames (64 MiB), several peers sending
 * their largest frames at once on a LAN cluster, and small next to a device's RAM. Over it, the stream whose
 * bytes do not fit is reset (its sender reopens one and retries); memory stays bounded whatever the number of
 * connections.
 */
export const FRAME_BUFFER_BYTES_PER_NODE_MAX = 16 * FRAME_BYTES_MAX;
/**
 * Largest frame decoded from a peer the receiver does not count as a member (FrameTransportOptions.trusted): its
 * messages are dropped after decoding anyway, except a join request, heartbeats and a configuration with its
 * chain, all a few KiB. Decoding costs far more than receiving (a 4 MiB frame of configuration announcements
 * held the event loop ~1 s): 256 KiB keeps one such frame to tens of milliseconds.
 */
export const UNTRUSTED_FRAME_BYTES_MAX = 256 * 1024;
/**
 * Frame bytes decoded per second from every such peer together (one budget per protocol), with as much again
 * as a burst: a key holder flooding us costs a bounded share of one core, whatever the number of identities.
 */
export const UNTRUSTED_DECODE_BYTES_PER_SEC = 512 * 1024;
/** First allocation of a partial frame: doubled as bytes arrive (never more than twice what arrived). */
export const FRAME_BUFFER_INITIAL_BYTES = 64 * 1024;

/** Replication protocol: one long-lived stream per direction per peer pair carrying length-prefixed frames. */
export const REPLICA_PROTOCOL = '/quorumd/replica/2.0.0';

/** Anti-entropy protocol (src/core/anti-entropy.ts): its own streams, one request in flight per round. */
export const SYNC_PROTOCOL = '/quorumd/sync/1.0.0';
/** Sync bytes queued per peer: one round moves at most a few 512 KiB replies at a time. */
export const SYNC_QUEUED_BYTES_PER_PEER_MAX = 8 * 1024 * 1024;

/** Dial budget when the caller gives none: the daemon's default (src/config/defaults.ts says why). */
export const DIAL_TIMEOUT_MS_DEFAULT = DEFAULTS.dialTimeoutMs;
/**
 * Inbound upgrade budget (TCP accept to handshake and muxer done): bounds how long a silent or slow socket holds
 * a pending-upgrade slot. A LAN upgrade takes two round trips and a few ms of X25519 (measured 60-140 ms on a
 * loaded 2-core host): 2 s is more than ten times that.
 */
export const INBOUND_UPGRADE_TIMEOUT_MS = 2_000;
/**
 * Inbound connections in the upgrade at once (libp2p's default is 10: 12 silent sockets blocked every join).
 * A pending socket costs a few KiB; 64 leaves room for every device of a LAN cluster restarting at once.
 */
export const MAX_INCOMING_PENDING_CONNECTIONS = 64;
/**
 * Of those, from one remote host (gater.ts): a device dials each peer once (plus a redial), so a host with
 * more pending than this is not a device joining; the cap keeps one host from taking every pending slot.
 */
export const INBOUND_PENDING_PER_HOST_MAX = 16;
/**
 * New inbound connections per second per remote host before refusing. A device redials a peer at most about
 * once a second, plus mDNS-triggered dials; tests run many nodes on one loopback address, and libp2p's default
 * (5) refused their restarts. Each accepted connection costs a handshake, so this also bounds that CPU.
 */
export const INBOUND_CONNECTION_THRESHOLD = 50;
/**
 * Open connections in total (libp2p's default is 300): a LAN cluster's devices hold one or two connections
 * per pair; this leaves room for tens of devices plus ones waiting to join.
 */
export const MAX_CONNECTIONS = 128;
/** Opening (negotiating) the replica stream over an existing connection: one round trip normally. */
export const STREAM_OPEN_TIMEOUT_MS = 5_000;
/** Graceful stream close on stop before aborting it. */
export const STREAM_CLOSE_TIMEOUT_MS = 1_000;
/** Replica streams accepted per connection: one per peer normally, plus a dying one being replaced. */
export const REPLICA_STREAMS_INBOUND_MAX = 8;
export const REPLICA_STREAMS_OUTBOUND_MAX = 8;
/** Encoded bytes queued for one peer before send() refuses (DEFAULTS.queuedBytesPerPeerMax). */
export const QUEUED_BYTES_PER_PEER_MAX_DEFAULT = DEFAULTS.queuedBytesPerPeerMax;

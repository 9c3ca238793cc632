// Protocol identifiers, limits and network defaults for the replica transport, each with its reason.
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
/** First allocation of a partial frame: doubled as bytes arrive (never more than twice what arrived). */
export const FRAME_BUFFER_INITIAL_BYTES = 64 * 1024;

/** Replication protocol: one long-lived stream per direction per peer pair carrying length-prefixed frames. */
export const REPLICA_PROTOCOL = '/quorumd/replica/2.0.0';

/** Anti-entropy protocol (src/core/anti-entropy.ts): its own streams, one request in flight per round. */
export const SYNC_PROTOCOL = '/quorumd/sync/1.0.0';
/** Sync bytes queued per peer: one round moves at most a few 512 KiB replies at a time. */
export const SYNC_QUEUED_BYTES_PER_PEER_MAX = 8 * 1024 * 1024;

/** Dial budget: a live peer on a LAN upgrades in < 100 ms; a wrong cluster key may otherwise hang ~6 s. */
export const DIAL_TIMEOUT_MS_DEFAULT = 2_000;
/** Inbound upgrade budget: bounds how long a stranger (wrong key) can hold a pending-connection slot. */
export const INBOUND_UPGRADE_TIMEOUT_MS = 5_000;
/** New connections per second per remote host before refusing (libp2p default 5 is too low for restarts and tests). */
export const INBOUND_CONNECTION_THRESHOLD = 100;
/** Opening (negotiating) the replica stream over an existing connection: one round trip normally. */
export const STREAM_OPEN_TIMEOUT_MS = 5_000;
/** Graceful stream close on stop before aborting it. */
export const STREAM_CLOSE_TIMEOUT_MS = 1_000;
/** Replica streams accepted per connection: one per peer normally, plus a dying one being replaced. */
export const REPLICA_STREAMS_INBOUND_MAX = 8;
export const REPLICA_STREAMS_OUTBOUND_MAX = 8;
/** Encoded bytes queued for one peer before send() refuses: a few full frames (memory bound per peer). */
export const QUEUED_BYTES_PER_PEER_MAX_DEFAULT = 16 * 1024 * 1024;

// The anti-entropy protocol's vocabulary: its messages and actions, what it reads of the local replica, its
// options, the per-message limits, and size estimates (for the byte budget). No state. See docs/anti-entropy.md.
import { unreachable } from './assert.js';
import type { Hash64, MerkleDigest } from './digest.js';
import type { KeyedRecord } from './messages.js';
import type { VersionedRecord } from './record.js';

/** What anti-entropy reads of this replica: records (staged writes included) and the digest kept in step. */
export interface SyncLocal {
  get(key: string): VersionedRecord | undefined;
  readonly digest: MerkleDigest;
}

/**
 * A key's entry as the initiator lists it for a differing segment: the round's 32-bit half of the hash of its
 * version state (see hashHalf).
 */
export interface SyncEntry {
  readonly key: string;
  readonly hash: number;
}

/** A purged tombstone, named with the full hash of the version that was purged. */
export interface PurgedEntry {
  readonly key: string;
  readonly hash: Hash64;
}

/**
 * The half of a 64-bit hash a round exchanges below the root: the high half in even-numbered rounds, the low
 * half in odd ones. Halves the bytes of the comparison; a 32-bit collision can hide a difference for one round
 * only (the root, always compared in full, still differs, and the next round compares the other half).
 */
export function hashHalf(hash: Hash64, session: number): number {
  return session % 2 === 0 ? hash.hi : hash.lo;
}

/**
 * Round messages: `epoch` is always the sender's membership epoch when it sent the message. Purging trusts only
 * observations (a match, a purge report) from a peer at this replica's own epoch (see purgeStable).
 */
export type SyncMessage =
  /**
   * Initiator -> responder: your child hashes of these nodes at `level` (0 = the root). `root` is the
   * initiator's root; a responder whose root equals it answers with no hashes (the round matched).
   */
  | { readonly type: 'digest'; readonly session: number; readonly epoch: number; readonly root: Hash64; readonly keys: number; readonly level: number; readonly nodes: readonly number[] }
  /** Responder -> initiator: its root and key count, and the children of each requested node (fan-out each, halves). */
  | { readonly type: 'digestReply'; readonly session: number; readonly epoch: number; readonly root: Hash64; readonly keys: number; readonly level: number; readonly hashes: readonly number[] }
  /** Initiator -> responder: these segments differ; here are my entries in them. */
  | { readonly type: 'segments'; readonly session: number; readonly epoch: number; readonly segments: readonly number[]; readonly entries: readonly SyncEntry[] }
  /**
   * Responder -> initiator: the first `done` segments were compared: my records where yours differ or are
   * missing, the keys I want from you, and keys whose version you listed that I purged as causally stable.
   */
  | {
      readonly type: 'segmentsReply';
      readonly session: number;
      readonly epoch: number;
      readonly done: number;
      readonly records: readonly KeyedRecord[];
      readonly want: readonly string[];
      readonly purged: readonly PurgedEntry[];
    }
  /** Initiator -> responder: records you asked for (merge them); `purged`: keys you sent that I had purged. */
  | { readonly type: 'push'; readonly session: number; readonly epoch: number; readonly records: readonly KeyedRecord[]; readonly purged: readonly PurgedEntry[] }
  /** Responder -> initiator: the push is merged and durable. */
  | { readonly type: 'pushAck'; readonly session: number }
  /** Responder -> initiator: not served (the initiator is not a member here, or this device is not one). */
  | { readonly type: 'refused'; readonly session: number; readonly reason: string };

export type SyncMessageType = SyncMessage['type'];

export type SyncAction =
  /** Store `record` (already merged with the local state) as the new state of `key`. */
  | { readonly type: 'persist'; readonly key: string; readonly record: VersionedRecord }
  /** Delete `key`, whose current state is the tombstone `record` (the runtime asserts it still is). */
  | { readonly type: 'purge'; readonly key: string; readonly record: VersionedRecord }
  | { readonly type: 'send'; readonly to: string; readonly msg: SyncMessage }
  /** Send `msg` once everything persisted before is durable. */
  | { readonly type: 'sendDurable'; readonly to: string; readonly msg: SyncMessage }
  /** Hinted handoff: `peer` merged (durably) the current records of `keys`; their hints can go. */
  | { readonly type: 'hintsDelivered'; readonly peer: string; readonly keys: readonly string[] };

export interface AntiEntropyOptions {
  readonly self: string;
  /** Mean time between rounds; each wait is drawn uniformly from [0.5, 1.5] of it. */
  readonly intervalMs: number;
  /** Bytes per second that rounds started here may move (requests and replies together). */
  readonly bytesPerSec: number;
  /** A request without reply for this long ends the round (failed). */
  readonly requestTimeoutMs: number;
  /** A tombstone is purged no sooner than this after it was stored here (messages still in flight). */
  readonly tombstoneGraceMs: number;
  /** Encoded size of a message, for the byte budget and the figures (default: an estimate). */
  readonly sizeOf?: (msg: SyncMessage) => number;
}

/** Nodes per digest request: 256 × 16 children × 4 B = 16 KiB of hash halves per reply. */
export const DIGEST_NODES_PER_REQUEST_MAX = 256;
/** Segments per segments request. */
export const SEGMENTS_PER_REQUEST_MAX = 512;
/** Entries listed per segments request (bounds the request's size: ~40 B each). */
export const ENTRIES_PER_REQUEST_MAX = 4096;
/** Record bytes (estimated) per segments reply or push before the rest waits for the next message. */
export const RECORD_BYTES_PER_MESSAGE_MAX = 512 * 1024;
/** Keys a push or want list may name (bounds decode work). */
export const KEYS_PER_MESSAGE_MAX = 8192;
/** Purged tombstones remembered, so a peer that still holds one learns it may purge it too. */
export const PURGED_REMEMBERED_MAX = 65_536;
/**
 * A member whose rounds keep failing (refused, timed out) waits, after its turn, one interval more after its
 * second failure in a row, doubling with each further one up to this many intervals.
 */
export const FAILED_PEER_BACKOFF_INTERVALS_MAX = 32;

/** True when no key appears twice across the lists (a message naming a key twice is malformed). */
export function distinctKeys(...lists: ReadonlyArray<readonly string[]>): boolean {
  const seen = new Set<string>();
  for (const list of lists) {
    for (const key of list) {
      if (seen.has(key)) return false;
      seen.add(key);
    }
  }
  return true;
}

/** Rough encoded size of a record (for limits and the budget; the transport measures the real bytes). */
export function estimateRecordBytes(key: string, record: VersionedRecord): number {
  let bytes = key.length + 8;
  for (const actor of Object.keys(record.context)) bytes += actor.length + 8;
  for (const s of record.siblings) bytes += s.dot.actor.length + 24 + (s.value === null ? 0 : s.value.length);
  return bytes;
}

/** Rough encoded size of a sync message. */
export function estimateSyncBytes(msg: SyncMessage): number {
  switch (msg.type) {
    case 'digest':
      return 24 + 4 * msg.nodes.length;
    case 'digestReply':
      return 24 + 4 * msg.hashes.length;
    case 'segments':
      return 12 + 4 * msg.segments.length + msg.entries.reduce((n, e) => n + e.key.length + 8, 0);
    case 'segmentsReply':
      return 12 + msg.records.reduce((n, r) => n + estimateRecordBytes(r.key, r.record), 0) + msg.want.reduce((n, k) => n + k.length + 2, 0) + msg.purged.reduce((n, e) => n + e.key.length + 12, 0);
    case 'push':
      return 12 + msg.records.reduce((n, r) => n + estimateRecordBytes(r.key, r.record), 0) + msg.purged.reduce((n, e) => n + e.key.length + 12, 0);
    case 'pushAck':
      return 8;
    case 'refused':
      return 8 + msg.reason.length;
    default:
      return unreachable(msg);
  }
}

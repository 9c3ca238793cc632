// The responder side of an anti-entropy round: answers a member's digest, segments and push requests from this
// replica's store. Stateless: everything a round needs travels in its messages (plus the purge memory here).
import { assert } from './assert.js';
import { entryHash, hashesEqual, segmentOf } from './digest.js';
import {
  DIGEST_NODES_PER_REQUEST_MAX,
  ENTRIES_PER_REQUEST_MAX,
  KEYS_PER_MESSAGE_MAX,
  type PurgedEntry,
  RECORD_BYTES_PER_MESSAGE_MAX,
  SEGMENTS_PER_REQUEST_MAX,
  type SyncAction,
  type SyncEntry,
  type SyncLocal,
  type SyncMessage,
  distinctKeys,
  estimateRecordBytes,
  hashHalf,
} from './anti-entropy-messages.js';
import type { Tombstones } from './anti-entropy-tombstones.js';
import { type MembershipConfig, isMember, isRemoved } from './membership.js';
import type { KeyedRecord } from './messages.js';

/** Why a round message from `from` is not served (undefined: it is). */
export function refusal(self: string, from: string, config: MembershipConfig): string | undefined {
  if (!isMember(config, self)) return 'not a member';
  if (!isMember(config, from) || isRemoved(config, from)) return 'you are not a member of my configuration';
  return undefined;
}

export function answerDigest(from: string, msg: Extract<SyncMessage, { type: 'digest' }>, epoch: number, local: SyncLocal, actions: SyncAction[]): void {
  const digest = local.digest;
  const root = digest.root();
  const base = { type: 'digestReply', session: msg.session, epoch, root, keys: digest.size, level: msg.level } as const;
  if (hashesEqual(root, msg.root)) {
    // A match tells the initiator we hold everything it holds (it may then purge tombstones): only once what
    // we hold is durable, or a crash here could bring back what the tombstones superseded.
    actions.push({ type: 'sendDurable', to: from, msg: { ...base, hashes: [] } });
    return;
  }
  const width = 1 << (msg.level * digest.shape.fanoutLog2);
  const valid =
    Number.isInteger(msg.level) && msg.level >= 0 && msg.level < digest.depth && msg.nodes.length >= 1 && msg.nodes.length <= DIGEST_NODES_PER_REQUEST_MAX &&
    msg.nodes.every((n) => Number.isInteger(n) && n >= 0 && n < width);
  if (!valid) {
    actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'malformed digest request' } });
    return;
  }
  const hashes: number[] = [];
  for (const index of msg.nodes) for (const h of digest.children({ level: msg.level, index })) hashes.push(hashHalf(h, msg.session));
  actions.push({ type: 'send', to: from, msg: { ...base, hashes } });
}

export function answerSegments(
  from: string,
  msg: Extract<SyncMessage, { type: 'segments' }>,
  epoch: number,
  local: SyncLocal,
  tombstones: Tombstones,
  actions: SyncAction[],
): void {
  const digest = local.digest;
  const segmentCount = 1 << digest.shape.segmentsLog2;
  const valid =
    msg.segments.length >= 1 && msg.segments.length <= SEGMENTS_PER_REQUEST_MAX && msg.entries.length <= ENTRIES_PER_REQUEST_MAX &&
    msg.segments.every((n) => Number.isInteger(n) && n >= 0 && n < segmentCount);
  if (!valid) {
    actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'malformed segments request' } });
    return;
  }
  const theirs = new Map<number, SyncEntry[]>();
  for (const entry of msg.entries) {
    const segment = segmentOf(entry.key, digest.shape);
    const list = theirs.get(segment);
    if (list === undefined) theirs.set(segment, [entry]);
    else list.push(entry);
  }
  const records: KeyedRecord[] = [];
  const want: string[] = [];
  const purged: PurgedEntry[] = [];
  let bytes = 0;
  let done = 0;
  for (const segment of msg.segments) {
    if (done > 0 && (bytes >= RECORD_BYTES_PER_MESSAGE_MAX || records.length + want.length >= KEYS_PER_MESSAGE_MAX)) break;
    done += 1;
    const listed = new Map<string, number>();
    for (const entry of theirs.get(segment) ?? []) listed.set(entry.key, entry.hash);
    for (const key of digest.keysIn(segment)) {
      const record = local.get(key);
      assert(record !== undefined, 'the digest indexes stored keys');
      const hash = listed.get(key);
      if (hash !== undefined && hash === hashHalf(entryHash(key, record), msg.session)) continue;
      records.push({ key, record });
      bytes += estimateRecordBytes(key, record);
      if (hash !== undefined) want.push(key);
    }
    for (const [key, hash] of listed) {
      if (local.get(key) !== undefined) continue;
      const purgedHash = tombstones.purgedHash(key);
      if (purgedHash !== undefined && hashHalf(purgedHash, msg.session) === hash) purged.push({ key, hash: purgedHash });
      else want.push(key);
    }
  }
  actions.push({ type: 'send', to: from, msg: { type: 'segmentsReply', session: msg.session, epoch, done, records, want, purged } });
}

export function answerPush(
  from: string,
  msg: Extract<SyncMessage, { type: 'push' }>,
  nowMs: number,
  epoch: number,
  local: SyncLocal,
  tombstones: Tombstones,
  actions: SyncAction[],
): void {
  if (msg.records.length > KEYS_PER_MESSAGE_MAX || msg.purged.length > KEYS_PER_MESSAGE_MAX) {
    actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'push too large' } });
    return;
  }
  if (!distinctKeys(msg.records.map((r) => r.key), msg.purged.map((e) => e.key))) {
    actions.push({ type: 'send', to: from, msg: { type: 'refused', session: msg.session, reason: 'a key named twice' } });
    return;
  }
  for (const { key, record } of msg.records) tombstones.merge(key, record, nowMs, local, actions);
  // A purge decided on another epoch's member list is not taken (it may have missed a member).
  if (msg.epoch === epoch) for (const { key, hash } of msg.purged) tombstones.purgeIfAt(key, hash, nowMs, local, actions);
  actions.push({ type: 'sendDurable', to: from, msg: { type: 'pushAck', session: msg.session } });
}

// Codec for anti-entropy FRAMES (/quorumd/sync/1.0.0, sync.proto): a batch of SyncMessages in one protobuf.
// Owns the validation of everything a peer sends on that protocol; malformed input only ever throws WireFormatError.
import {
  DIGEST_NODES_PER_REQUEST_MAX,
  ENTRIES_PER_REQUEST_MAX,
  KEYS_PER_MESSAGE_MAX,
  SEGMENTS_PER_REQUEST_MAX,
  type PurgedEntry,
  type SyncEntry,
  type SyncMessage,
  type SyncMessageType,
} from '../core/anti-entropy.js';
import type { Hash64 } from '../core/digest.js';
import { unreachable } from '../core/assert.js';
import type { KeyedRecord } from '../core/messages.js';
import { checkText, safeNumber, toUint64, wireDecode } from './codec-util.js';
import { WireFormatError } from './errors.js';
import { RECORD_PB_LIMITS, recordFromPb, recordToPb } from './record.js';
import { FRAME_BYTES_MAX, checkKey } from './replica.js';
import * as pb from './gen/sync.pb.js';

/** Messages per sync frame (a round has one request in flight, so frames are small in count). */
export const SYNC_FRAME_MESSAGES_MAX = 64;
/** Hashes one message may carry: a digest reply to the largest request. */
const HASHES_MAX = DIGEST_NODES_PER_REQUEST_MAX * 256;
const REASON_CHARS_MAX = 200;

const TYPE_TO_PB: { readonly [T in SyncMessageType]: pb.SyncType } = {
  digest: pb.SyncType.DIGEST,
  digestReply: pb.SyncType.DIGEST_REPLY,
  segments: pb.SyncType.SEGMENTS,
  segmentsReply: pb.SyncType.SEGMENTS_REPLY,
  push: pb.SyncType.PUSH,
  pushAck: pb.SyncType.PUSH_ACK,
  refused: pb.SyncType.REFUSED,
};

/** The encoding of one message as a frame entry (a frame is the concatenation of its entries). */
export function encodeSyncEntry(msg: SyncMessage): Uint8Array {
  return pb.SyncFrame.encode({ messages: [syncToPb(msg)] });
}

/** The messages of a frame, validated; throws WireFormatError for anything malformed or over the limits. */
export function decodeSyncFrame(bytes: Uint8Array): SyncMessage[] {
  if (bytes.length > FRAME_BYTES_MAX) throw new WireFormatError(`frame of ${bytes.length} bytes exceeds ${FRAME_BYTES_MAX}`);
  return wireDecode('sync frame', () => {
    const frame = pb.SyncFrame.decode(bytes, {
      limits: {
        messages: SYNC_FRAME_MESSAGES_MAX,
        messages$: {
          nodes: SEGMENTS_PER_REQUEST_MAX,
          keysListed: ENTRIES_PER_REQUEST_MAX,
          records: KEYS_PER_MESSAGE_MAX,
          records$: { record: RECORD_PB_LIMITS },
          want: KEYS_PER_MESSAGE_MAX,
        },
      },
    });
    return frame.messages.map(syncFromPb);
  });
}

function syncToPb(m: SyncMessage): pb.SyncMessage {
  const out: pb.SyncMessage = {
    type: TYPE_TO_PB[m.type],
    session: toUint64(m.session, 'session'),
    root: new Uint8Array(0),
    keys: 0n,
    level: 0,
    nodes: [],
    hashes: new Uint8Array(0),
    keysListed: [],
    done: 0,
    records: [],
    want: [],
    reason: '',
    epoch: 0n,
  };
  if (m.type !== 'pushAck' && m.type !== 'refused') out.epoch = toUint64(m.epoch, 'epoch');
  switch (m.type) {
    case 'digest':
      out.root = packHashes([m.root]);
      out.keys = toUint64(m.keys, 'keys');
      out.level = m.level;
      out.nodes = [...m.nodes];
      break;
    case 'digestReply':
      out.root = packHashes([m.root]);
      out.keys = toUint64(m.keys, 'keys');
      out.level = m.level;
      out.hashes = packHalves(m.hashes);
      break;
    case 'segments':
      out.nodes = [...m.segments];
      out.keysListed = m.entries.map((e) => e.key);
      out.hashes = packHalves(m.entries.map((e) => e.hash));
      break;
    case 'segmentsReply':
      out.done = m.done;
      out.records = m.records.map(recordOut);
      out.want = [...m.want];
      out.keysListed = m.purged.map((e) => e.key);
      out.hashes = packHashes(m.purged.map((e) => e.hash));
      break;
    case 'push':
      out.records = m.records.map(recordOut);
      out.keysListed = m.purged.map((e) => e.key);
      out.hashes = packHashes(m.purged.map((e) => e.hash));
      break;
    case 'pushAck':
      break;
    case 'refused':
      out.reason = shortReason(m.reason);
      break;
    default:
      unreachable(m);
  }
  return out;
}

function syncFromPb(m: pb.SyncMessage): SyncMessage {
  for (const key of m.keysListed) checkKey(key);
  for (const key of m.want) checkKey(key);
  const session = safeNumber(m.session, 'session');
  const epoch = safeNumber(m.epoch, 'epoch'); // absent: 0 (ignored by pushAck and refused)
  switch (m.type) {
    case pb.SyncType.DIGEST:
      if (m.nodes.length > DIGEST_NODES_PER_REQUEST_MAX) throw new WireFormatError('too many digest nodes');
      return { type: 'digest', session, epoch, root: oneHash(m.root), keys: safeNumber(m.keys, 'keys'), level: m.level, nodes: m.nodes };
    case pb.SyncType.DIGEST_REPLY:
      return { type: 'digestReply', session, epoch, root: oneHash(m.root), keys: safeNumber(m.keys, 'keys'), level: m.level, hashes: unpackHalves(m.hashes, HASHES_MAX) };
    case pb.SyncType.SEGMENTS:
      return { type: 'segments', session, epoch, segments: m.nodes, entries: entries(m.keysListed, m.hashes) };
    case pb.SyncType.SEGMENTS_REPLY:
      return { type: 'segmentsReply', session, epoch, done: m.done, records: m.records.map(recordIn), want: m.want, purged: purgedEntries(m.keysListed, m.hashes) };
    case pb.SyncType.PUSH:
      return { type: 'push', session, epoch, records: m.records.map(recordIn), purged: purgedEntries(m.keysListed, m.hashes) };
    case pb.SyncType.PUSH_ACK:
      return { type: 'pushAck', session };
    case pb.SyncType.REFUSED:
      return { type: 'refused', session, reason: shortReason(checkText(m.reason, 'a reason')) };
    default:
      throw new WireFormatError(`unknown sync message type ${String(m.type)}`);
  }
}

/** At most REASON_CHARS_MAX characters, never half of a surrogate pair. */
function shortReason(reason: string): string {
  if (reason.length <= REASON_CHARS_MAX) return reason;
  const cut = reason.slice(0, REASON_CHARS_MAX);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

function recordOut(r: KeyedRecord): pb.SyncRecord {
  return { key: r.key, record: recordToPb(r.record) };
}

function recordIn(r: pb.SyncRecord): KeyedRecord {
  checkKey(r.key);
  if (r.record === undefined) throw new WireFormatError(`sync record ${JSON.stringify(r.key.slice(0, 40))} has no record`);
  return { key: r.key, record: recordFromPb(r.record) };
}

function entries(keys: readonly string[], hashes: Uint8Array): SyncEntry[] {
  const list = unpackHalves(hashes, ENTRIES_PER_REQUEST_MAX);
  if (list.length !== keys.length) throw new WireFormatError(`${keys.length} keys but ${list.length} hashes`);
  return keys.map((key, i) => ({ key, hash: list[i] as number }));
}

function purgedEntries(keys: readonly string[], hashes: Uint8Array): PurgedEntry[] {
  const list = unpackHashes(hashes, ENTRIES_PER_REQUEST_MAX);
  if (list.length !== keys.length) throw new WireFormatError(`${keys.length} keys but ${list.length} hashes`);
  return keys.map((key, i) => ({ key, hash: list[i] as Hash64 }));
}

/** 32-bit hash halves, 4 bytes each (big-endian). */
function packHalves(halves: readonly number[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(halves.length * 4));
  const view = new DataView(out.buffer);
  halves.forEach((h, i) => view.setUint32(i * 4, h));
  return out;
}

function unpackHalves(bytes: Uint8Array, max: number): number[] {
  if (bytes.length % 4 !== 0) throw new WireFormatError(`hash bytes ${bytes.length} are not a multiple of 4`);
  if (bytes.length / 4 > max) throw new WireFormatError(`more than ${max} hashes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let at = 0; at < bytes.length; at += 4) out.push(view.getUint32(at));
  return out;
}

export function packHashes(hashes: readonly Hash64[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(new ArrayBuffer(hashes.length * 8));
  const view = new DataView(out.buffer);
  hashes.forEach((h, i) => {
    view.setUint32(i * 8, h.hi);
    view.setUint32(i * 8 + 4, h.lo);
  });
  return out;
}

function unpackHashes(bytes: Uint8Array, max: number): Hash64[] {
  if (bytes.length % 8 !== 0) throw new WireFormatError(`hash bytes ${bytes.length} are not a multiple of 8`);
  if (bytes.length / 8 > max) throw new WireFormatError(`more than ${max} hashes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Hash64[] = [];
  for (let at = 0; at < bytes.length; at += 8) out.push({ hi: view.getUint32(at), lo: view.getUint32(at + 4) });
  return out;
}

function oneHash(bytes: Uint8Array): Hash64 {
  const list = unpackHashes(bytes, 1);
  assertWire(list.length === 1, 'a root hash of 8 bytes');
  return list[0] as Hash64;
}

function assertWire(condition: boolean, what: string): void {
  if (!condition) throw new WireFormatError(`expected ${what}`);
}



// Codec for replication FRAMES: a batch of core Messages in one protobuf (replica.proto). Owns the frame
// limits and the validation of everything a peer sends; malformed input only ever throws WireFormatError.
import { assert, unreachable } from '../core/assert.js';
import { type MemberInfo, type MembershipConfig, type SeatClaim, configProblem, seatClaimShapeProblem } from '../core/membership.js';
import { CHAIN_SENT_MAX } from '../core/config-proof.js';
import type { Ballot } from '../core/paxos.js';
import type { KeyedRecord, Message, MessageType } from '../core/messages.js';
import { ACTOR_CHARS_MAX, DOT_COUNTER_MAX, type VersionedRecord } from '../core/record.js';
import type { Dot } from '../core/vv.js';
import { checkText, safeNumber, toUint64, wireDecode } from './codec-util.js';
import { WireFormatError } from './errors.js';
import { DEFAULTS } from '../config/defaults.js';
import { REMOVED_MAX } from '../core/membership.js';
import { RECORD_PB_LIMITS, recordFromPb, recordToPb } from './record.js';
import * as pb from './gen/replica.pb.js';

/** Largest frame accepted or sent: a 1 MiB value record plus a batch of small messages, with headroom. */
export const FRAME_BYTES_MAX = 4 * 1024 * 1024;
/** Most messages in one frame: bounds per-frame decode work; a sender splits bigger batches. */
export const FRAME_MESSAGES_MAX = 8192;

/**
 * Members one configuration list may name (voters, learners, previous voters, replaced seats). A LAN cluster
 * has tens of devices; the bound only caps decode work before configProblem() looks at the list.
 */
export const CONFIG_MEMBERS_MAX = 1024;
/** Addresses one member or join request may list: a few per interface and transport, IPv4 and IPv6. */
export const MEMBER_ADDRS_MAX = 256;
/** Longest store id: a store names itself with 32 hex characters (a peer keeps the last one it heard of every peer). */
export const STORE_ID_CHARS_MAX = 128;
/** Longest address: a multiaddr with a DNS name and a /p2p/ peer ID is under 300 characters. */
export const ADDR_CHARS_MAX = 1024;
/** Records in one transfer message: senders cut batches at DEFAULTS.transferBatchRecords (1,024) and 1 MiB. */
export const TRANSFER_RECORDS_MAX = 8192;
/**
 * Longest key in a message, in UTF-16 code units: at most DEFAULTS.keyBytesMax, since a key's UTF-8 form is
 * never shorter than its UTF-16 one, so no key a client could write is refused.
 */
export const KEY_CHARS_MAX = DEFAULTS.keyBytesMax;

const MEMBER_PB_LIMITS = { addrs: MEMBER_ADDRS_MAX };
const CONFIG_PB_LIMITS = {
  voters: CONFIG_MEMBERS_MAX,
  voters$: MEMBER_PB_LIMITS,
  learners: CONFIG_MEMBERS_MAX,
  learners$: MEMBER_PB_LIMITS,
  removed: REMOVED_MAX,
  previousVoters: CONFIG_MEMBERS_MAX,
  replaced: CONFIG_MEMBERS_MAX,
};
/** Limits on every repeated field of a message, applied while decoding (protons `limits`). */
const MESSAGE_PB_LIMITS = {
  record: RECORD_PB_LIMITS,
  config: CONFIG_PB_LIMITS,
  acceptedConfig: CONFIG_PB_LIMITS,
  addrs: MEMBER_ADDRS_MAX,
  records: TRANSFER_RECORDS_MAX,
  records$: { record: RECORD_PB_LIMITS },
};

export interface FrameLimits {
  readonly frameBytesMax: number;
  readonly frameMessagesMax: number;
}

export const FRAME_LIMITS: FrameLimits = Object.freeze({ frameBytesMax: FRAME_BYTES_MAX, frameMessagesMax: FRAME_MESSAGES_MAX });

const TYPE_TO_PB: { readonly [T in MessageType]: pb.MessageType } = {
  write: pb.MessageType.WRITE,
  writeAck: pb.MessageType.WRITE_ACK,
  read: pb.MessageType.READ,
  readReply: pb.MessageType.READ_REPLY,
  repair: pb.MessageType.REPAIR,
  stale: pb.MessageType.STALE,
  config: pb.MessageType.CONFIG,
  configPrepare: pb.MessageType.CONFIG_PREPARE,
  configPromise: pb.MessageType.CONFIG_PROMISE,
  configAccept: pb.MessageType.CONFIG_ACCEPT,
  configAccepted: pb.MessageType.CONFIG_ACCEPTED,
  heartbeat: pb.MessageType.HEARTBEAT,
  heartbeatAck: pb.MessageType.HEARTBEAT_ACK,
  joinRequest: pb.MessageType.JOIN_REQUEST,
  joinReply: pb.MessageType.JOIN_REPLY,
  transfer: pb.MessageType.TRANSFER,
  transferAck: pb.MessageType.TRANSFER_ACK,
  transferRequest: pb.MessageType.TRANSFER_REQUEST,
};

/** One frame holding `messages` in order. Exceeding the frame limits is a programmer error (split first). */
export function encodeFrame(messages: readonly Message[], limits: FrameLimits = FRAME_LIMITS): Uint8Array {
  assert(messages.length <= limits.frameMessagesMax, `a frame holds at most ${limits.frameMessagesMax} messages`);
  const bytes = pb.Frame.encode({ messages: messages.map(messageToPb) });
  assert(bytes.length <= limits.frameBytesMax, `a frame holds at most ${limits.frameBytesMax} bytes`);
  return bytes;
}

/**
 * The encoding of one message as a frame entry. A frame is exactly the concatenation of its entries (a
 * repeated field), so a sender can encode each message once, measure it, and cut batches at any boundary.
 */
export function encodeFrameEntry(message: Message): Uint8Array {
  return pb.Frame.encode({ messages: [messageToPb(message)] });
}

/** Concatenates frame entries into one frame. */
export function joinFrameEntries(entries: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const e of entries) length += e.length;
  const frame = new Uint8Array(length);
  let at = 0;
  for (const e of entries) {
    frame.set(e, at);
    at += e.length;
  }
  return frame;
}

/** The messages of a frame, validated; throws WireFormatError for anything malformed or over the limits. */
export function decodeFrame(bytes: Uint8Array, limits: FrameLimits = FRAME_LIMITS): Message[] {
  if (bytes.length > limits.frameBytesMax) {
    throw new WireFormatError(`frame of ${bytes.length} bytes exceeds ${limits.frameBytesMax}`);
  }
  return wireDecode('frame', () => {
    const frame = pb.Frame.decode(bytes, { limits: { messages: limits.frameMessagesMax, messages$: MESSAGE_PB_LIMITS } });
    return frame.messages.map(messageFromPb);
  });
}

function messageToPb(m: Message): pb.Message {
  const out: pb.Message = {
    type: TYPE_TO_PB[m.type],
    opId: 0n,
    epoch: toUint64(m.epoch, 'epoch'),
    key: '',
    accepted: false,
    addrs: [],
    store: '',
    ok: false,
    error: '',
    records: [],
    done: false,
    seq: 0n,
    unavailable: false,
    chain: [],
    signature: '',
  };
  if ('opId' in m) out.opId = toUint64(m.opId, 'opId');
  switch (m.type) {
    case 'transferAck':
      out.seq = toUint64(m.seq, 'seq');
      if (m.resumeAfter !== undefined) out.resumeAfter = m.resumeAfter;
      break;
    case 'heartbeat':
      out.store = m.store ?? '';
      break;
    case 'writeAck':
    case 'transferRequest':
    case 'heartbeatAck':
      break;
    case 'read':
      out.key = m.key;
      break;
    case 'write':
      out.key = m.key;
      out.record = recordToPb(m.record);
      if (m.dot !== undefined) out.dot = { actor: m.dot.actor, counter: toUint64(m.dot.counter, 'write dot counter') };
      break;
    case 'repair':
      out.key = m.key;
      out.record = recordToPb(m.record);
      break;
    case 'readReply':
      out.key = m.key;
      if (m.record !== undefined) out.record = recordToPb(m.record);
      if (m.unavailable === true) out.unavailable = true;
      break;
    case 'stale':
    case 'config':
      out.config = configToPb(m.config);
      if (m.chain !== undefined) out.chain = m.chain.map(configToPb);
      break;
    case 'configPrepare':
    case 'configAccept':
      out.ballot = ballotToPb(m.ballot);
      out.config = configToPb(m.config);
      break;
    case 'configPromise':
      out.ballot = ballotToPb(m.ballot);
      out.ok = m.ok;
      if (m.accepted !== undefined) {
        out.acceptedBallot = ballotToPb(m.accepted.ballot);
        out.acceptedConfig = configToPb(m.accepted.config);
      }
      if (m.promised !== undefined) out.promised = ballotToPb(m.promised);
      if (m.config !== undefined) out.config = configToPb(m.config);
      break;
    case 'configAccepted':
      out.ballot = ballotToPb(m.ballot);
      out.ok = m.ok;
      if (m.promised !== undefined) out.promised = ballotToPb(m.promised);
      if (m.config !== undefined) out.config = configToPb(m.config);
      if (m.signature !== undefined) out.signature = m.signature;
      break;
    case 'joinRequest':
      out.addrs = [...m.addrs];
      out.store = m.store ?? '';
      if (m.claim !== undefined) out.claim = claimToPb(m.claim);
      break;
    case 'joinReply':
      out.ok = m.ok;
      out.error = m.error;
      if (m.config !== undefined) out.config = configToPb(m.config);
      break;
    case 'transfer':
      out.records = m.records.map((r) => ({ key: r.key, record: recordToPb(r.record) }));
      out.done = m.done;
      out.seq = toUint64(m.seq, 'seq');
      if (m.total !== undefined) out.total = toUint64(m.total, 'total');
      break;
    default:
      unreachable(m, 'message type');
  }
  return out;
}

function messageFromPb(p: pb.Message): Message {
  checkKey(p.key);
  if (p.resumeAfter !== undefined) checkKey(p.resumeAfter);
  checkText(p.error, 'an error');
  checkText(p.signature, 'a signature');
  checkStore(p.store);
  for (const a of p.addrs) checkAddr(a);
  const opId = safeNumber(p.opId, 'opId');
  const epoch = safeNumber(p.epoch, 'epoch');
  switch (p.type) {
    case pb.MessageType.WRITE:
      return {
        type: 'write',
        opId,
        epoch,
        key: p.key,
        record: requiredRecord(p.record, 'write'),
        ...(p.dot === undefined ? {} : { dot: writeDotFromPb(p.dot) }),
      };
    case pb.MessageType.WRITE_ACK:
      return { type: 'writeAck', opId, epoch };
    case pb.MessageType.READ:
      return { type: 'read', opId, epoch, key: p.key };
    case pb.MessageType.READ_REPLY:
      return p.unavailable === true
        ? { type: 'readReply', opId, epoch, key: p.key, record: optionalRecord(p.record), unavailable: true }
        : { type: 'readReply', opId, epoch, key: p.key, record: optionalRecord(p.record) };
    case pb.MessageType.REPAIR:
      return { type: 'repair', epoch, key: p.key, record: requiredRecord(p.record, 'repair') };
    case pb.MessageType.STALE:
      return { type: 'stale', opId, epoch, config: requiredConfig(p.config, 'stale'), ...chainFromPb(p.chain) };
    case pb.MessageType.CONFIG_PREPARE:
      return { type: 'configPrepare', opId, epoch, ballot: requiredBallot(p.ballot, 'configPrepare'), config: requiredConfig(p.config, 'configPrepare') };
    case pb.MessageType.CONFIG_PROMISE: {
      const accepted =
        p.acceptedConfig === undefined
          ? undefined
          : { ballot: requiredBallot(p.acceptedBallot, 'configPromise'), config: requiredConfig(p.acceptedConfig, 'configPromise') };
      return {
        type: 'configPromise',
        opId,
        epoch,
        ballot: requiredBallot(p.ballot, 'configPromise'),
        ok: p.ok,
        accepted,
        promised: p.promised === undefined ? undefined : requiredBallot(p.promised, 'configPromise'),
        config: optionalConfig(p.config),
      };
    }
    case pb.MessageType.CONFIG_ACCEPT:
      return { type: 'configAccept', opId, epoch, ballot: requiredBallot(p.ballot, 'configAccept'), config: requiredConfig(p.config, 'configAccept') };
    case pb.MessageType.CONFIG_ACCEPTED:
      return {
        type: 'configAccepted',
        opId,
        epoch,
        ballot: requiredBallot(p.ballot, 'configAccepted'),
        ok: p.ok,
        promised: p.promised === undefined ? undefined : requiredBallot(p.promised, 'configAccepted'),
        config: optionalConfig(p.config),
        ...(p.signature === '' ? {} : { signature: p.signature }),
      };
    case pb.MessageType.HEARTBEAT:
      return { type: 'heartbeat', opId, epoch, ...(p.store === '' ? {} : { store: p.store }) };
    case pb.MessageType.HEARTBEAT_ACK:
      return { type: 'heartbeatAck', opId, epoch };
    case pb.MessageType.CONFIG:
      return { type: 'config', epoch, config: requiredConfig(p.config, 'config'), ...chainFromPb(p.chain) };
    case pb.MessageType.JOIN_REQUEST:
      return {
        type: 'joinRequest',
        opId,
        epoch,
        addrs: p.addrs,
        ...(p.store === '' ? {} : { store: p.store }),
        ...(p.claim === undefined ? {} : { claim: claimFromPb(p.claim) }),
      };
    case pb.MessageType.JOIN_REPLY:
      return { type: 'joinReply', opId, epoch, ok: p.ok, error: p.error, config: optionalConfig(p.config) };
    case pb.MessageType.TRANSFER:
      return {
        type: 'transfer',
        opId,
        epoch,
        seq: safeNumber(p.seq, 'seq'),
        records: p.records.map(keyedRecordFromPb),
        done: p.done,
        ...(p.total === undefined ? {} : { total: safeNumber(p.total, 'total') }),
      };
    case pb.MessageType.TRANSFER_ACK:
      return { type: 'transferAck', opId, epoch, seq: safeNumber(p.seq, 'seq'), ...(p.resumeAfter === undefined ? {} : { resumeAfter: p.resumeAfter }) };
    case pb.MessageType.TRANSFER_REQUEST:
      return { type: 'transferRequest', opId, epoch };
    default:
      throw new WireFormatError(`unknown message type ${String(p.type)}`);
  }
}

function requiredRecord(record: pb.VersionedRecord | undefined, type: string): VersionedRecord {
  if (record === undefined) throw new WireFormatError(`${type} message without a record`);
  return recordFromPb(record);
}

function optionalRecord(record: pb.VersionedRecord | undefined): VersionedRecord | undefined {
  return record === undefined ? undefined : recordFromPb(record);
}

/** Refuses a key longer than any client could write (see KEY_CHARS_MAX). */
export function checkKey(key: string): void {
  if (key.length > KEY_CHARS_MAX) throw new WireFormatError(`a key of ${key.length} characters exceeds ${KEY_CHARS_MAX}`);
  checkText(key, 'a key');
}

function keyedRecordFromPb(k: pb.KeyedRecord): KeyedRecord {
  checkKey(k.key);
  return { key: k.key, record: requiredRecord(k.record, 'transfer entry') };
}

function configToPb(c: MembershipConfig): pb.MembershipConfig {
  const member = (m: MemberInfo): pb.MemberInfo => ({
    peerId: m.peerId,
    addrs: [...m.addrs],
    store: m.store ?? '',
    ...(m.claim === undefined ? {} : { claim: claimToPb(m.claim) }),
  });
  return {
    clusterId: c.clusterId,
    epoch: toUint64(c.epoch, 'config epoch'),
    voters: c.voters.map(member),
    learners: c.learners.map(member),
    removed: [...c.removed],
    previousVoters: [...c.previousVoters],
    replaced: [...(c.replaced ?? [])],
    ...(c.proof === undefined
      ? {}
      : { proof: { ballot: ballotToPb(c.proof.ballot), signatures: c.proof.signatures.map((x) => ({ peerId: x.peerId, signature: x.signature })) } }),
  };
}

/** The chain of a config or stale message: at most CHAIN_SENT_MAX configurations (what a sender puts in one). */
function chainFromPb(chain: readonly pb.MembershipConfig[]): { chain?: MembershipConfig[] } {
  if (chain.length === 0) return {};
  if (chain.length > CHAIN_SENT_MAX) throw new WireFormatError(`a configuration chain of ${chain.length} exceeds ${CHAIN_SENT_MAX}`);
  return { chain: chain.map((c) => requiredConfig(c, 'chain')) };
}

function ballotToPb(b: Ballot): pb.Ballot {
  return { round: toUint64(b.round, 'ballot round'), proposer: b.proposer };
}

function requiredBallot(ballot: pb.Ballot | undefined, type: string): Ballot {
  if (ballot === undefined) throw new WireFormatError(`${type} message without a ballot`);
  return { round: safeNumber(ballot.round, 'ballot round'), proposer: checkText(ballot.proposer, 'a proposer') };
}

function requiredConfig(config: pb.MembershipConfig | undefined, type: string): MembershipConfig {
  if (config === undefined) throw new WireFormatError(`${type} message without a configuration`);
  checkText(config.clusterId, 'a cluster id');
  for (const list of [config.removed, config.previousVoters, config.replaced]) for (const id of list) checkText(id, 'a peer id');
  const out: MembershipConfig = {
    clusterId: config.clusterId,
    epoch: safeNumber(config.epoch, 'config epoch'),
    voters: config.voters.map(memberFromPb),
    learners: config.learners.map(memberFromPb),
    removed: config.removed,
    previousVoters: config.previousVoters,
    replaced: config.replaced,
    ...(config.proof === undefined
      ? {}
      : {
          proof: {
            ballot: requiredBallot(config.proof.ballot, 'configuration proof'),
            signatures: config.proof.signatures.map((x) => ({ peerId: checkText(x.peerId, 'a signer'), signature: checkText(x.signature, 'a signature') })),
          },
        }),
  };
  const problem = configProblem(out);
  if (problem !== undefined) throw new WireFormatError(`bad configuration in ${type} message: ${problem}`);
  return out;
}

/** Refuses a store id no store has (what a peer sends is kept: see STORE_ID_CHARS_MAX). */
function checkStore(store: string): void {
  if (store.length > STORE_ID_CHARS_MAX) throw new WireFormatError(`a store id of ${store.length} characters exceeds ${STORE_ID_CHARS_MAX}`);
  checkText(store, 'a store id');
}

/** Refuses an address longer than any multiaddr (pending join requests and the address book keep them). */
function checkAddr(addr: string): void {
  if (addr.length > ADDR_CHARS_MAX) throw new WireFormatError(`an address of ${addr.length} characters exceeds ${ADDR_CHARS_MAX}`);
  checkText(addr, 'an address');
}

function memberFromPb(m: pb.MemberInfo): MemberInfo {
  checkText(m.peerId, 'a peer id');
  checkStore(m.store);
  for (const a of m.addrs) checkAddr(a);
  const seat: MemberInfo = m.store === '' ? { peerId: m.peerId, addrs: m.addrs } : { peerId: m.peerId, addrs: m.addrs, store: m.store };
  return m.claim === undefined ? seat : { ...seat, claim: claimFromPb(m.claim) };
}

/** A write's dot: the limits of a sibling's (src/core/record.ts ACTOR_CHARS_MAX, DOT_COUNTER_MAX). */
function writeDotFromPb(d: pb.WriteDot): Dot {
  if (d.actor.length === 0 || d.actor.length > ACTOR_CHARS_MAX) throw new WireFormatError(`a write dot's writer of ${d.actor.length} characters`);
  const counter = safeNumber(d.counter, 'write dot counter');
  if (counter < 1 || counter > DOT_COUNTER_MAX) throw new WireFormatError(`a write dot counter of ${counter}`);
  return { actor: checkText(d.actor, 'a writer'), counter };
}

function claimToPb(c: SeatClaim): pb.SeatClaim {
  return { since: toUint64(c.since, 'claim epoch'), signature: c.signature, from: c.from };
}

function claimFromPb(c: pb.SeatClaim): SeatClaim {
  const claim: SeatClaim = {
    from: checkText(c.from, 'a claim store'),
    since: safeNumber(c.since, 'claim epoch'),
    signature: checkText(c.signature, 'a claim signature'),
  };
  const problem = seatClaimShapeProblem(claim);
  if (problem !== undefined) throw new WireFormatError(problem);
  return claim;
}

function optionalConfig(config: pb.MembershipConfig | undefined): MembershipConfig | undefined {
  return config === undefined ? undefined : requiredConfig(config, 'message');
}

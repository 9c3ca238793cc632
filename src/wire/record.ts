// Binary codec for VersionedRecord (record.proto), used for the on-disk format and inside replica frames.
// Decoding validates everything a peer or a corrupt file could get wrong and throws WireFormatError.
import { DEFAULTS } from '../config/defaults.js';
import type { Hlc } from '../core/hlc.js';
import {
  ACTOR_CHARS_MAX,
  CONTEXT_ACTORS_MAX,
  RECORD_LIMITS,
  type RecordLimits,
  SIBLINGS_MAX,
  STORED_RECORD_LIMITS,
  type Sibling,
  type VersionedRecord,
  compareSiblings,
  recordWellFormed,
} from '../core/record.js';
import { type VersionVector, vvEntries } from '../core/vv.js';
import { checkText, safeNumber, toUint64, wireDecode } from './codec-util.js';
import { WireFormatError } from './errors.js';
import * as pb from './gen/record.pb.js';

/** Actor names that would alias Object.prototype when used as a plain-object key in a version vector. */
const RESERVED_ACTORS = new Set(['__proto__']);

/**
 * Largest value of one sibling: what a client may write (DEFAULTS.valueBytesMax, the HTTP limit). Frames bound a
 * record's total size already; this refuses a single value no write could have produced.
 */
export const SIBLING_VALUE_BYTES_MAX = DEFAULTS.valueBytesMax;

/**
 * Repeated-field limits for a VersionedRecord, applied while decoding (protons `limits`): an oversized list is
 * refused before it is built, not after (a 4 MiB frame holds ~350,000 empty siblings).
 */
export const RECORD_PB_LIMITS = Object.freeze({ context: CONTEXT_ACTORS_MAX, siblings: SIBLINGS_MAX });

export function encodeRecord(record: VersionedRecord): Uint8Array {
  return pb.VersionedRecord.encode(recordToPb(record));
}

/**
 * Decodes and validates a record; throws WireFormatError on anything malformed. The default limits are the
 * store's (STORED_RECORD_LIMITS: this is the on-disk format); frames decode their records with RECORD_LIMITS.
 */
export function decodeRecord(bytes: Uint8Array, limits: RecordLimits = STORED_RECORD_LIMITS): VersionedRecord {
  const pbLimits = limits === RECORD_LIMITS ? RECORD_PB_LIMITS : {};
  return wireDecode('record', () => recordFromPb(pb.VersionedRecord.decode(bytes, { limits: pbLimits }), limits));
}

/** Protobuf form of a record (also embedded in replica messages). */
export function recordToPb(record: VersionedRecord): pb.VersionedRecord {
  return {
    context: vvEntries(record.context).map(([actor, n]) => ({ actor, counter: toUint64(n, 'context counter') })),
    siblings: record.siblings.map((s) => ({
      actor: s.dot.actor,
      counter: toUint64(s.dot.counter, 'dot counter'),
      // The writer copies any Uint8Array; the generated type only narrows the buffer type.
      value: (s.value ?? undefined) as Uint8Array<ArrayBuffer> | undefined,
      hlcWallMs: toUint64(s.hlc.wallMs, 'hlc wallMs'),
      hlcLogical: toUint64(s.hlc.logical, 'hlc logical'),
    })),
  };
}

/** Record from its protobuf form, validated; throws WireFormatError. Values are copied out of the input buffer. */
export function recordFromPb(msg: pb.VersionedRecord, limits: RecordLimits = RECORD_LIMITS): VersionedRecord {
  // Also checked here for callers that decoded without RECORD_PB_LIMITS.
  if (msg.context.length > limits.contextActorsMax) throw new WireFormatError(`more than ${limits.contextActorsMax} context entries`);
  if (msg.siblings.length > limits.siblingsMax) throw new WireFormatError(`more than ${limits.siblingsMax} siblings`);
  const entries: Array<[string, number]> = [];
  const actors = new Set<string>();
  for (const e of msg.context) {
    checkActor(e.actor);
    if (actors.has(e.actor)) throw new WireFormatError(`duplicate context actor ${JSON.stringify(e.actor)}`);
    actors.add(e.actor);
    entries.push([e.actor, safeNumber(e.counter, 'context counter')]);
  }
  // Object.fromEntries defines own properties, so no actor name can touch the prototype.
  const context: VersionVector = Object.fromEntries(entries);
  const siblings: Sibling[] = msg.siblings.map((s) => {
    checkActor(s.actor);
    const hlc: Hlc = { wallMs: safeNumber(s.hlcWallMs, 'hlc wallMs'), logical: safeNumber(s.hlcLogical, 'hlc logical') };
    if (s.value !== undefined && s.value.length > SIBLING_VALUE_BYTES_MAX) {
      throw new WireFormatError(`a value of ${s.value.length} bytes exceeds ${SIBLING_VALUE_BYTES_MAX}`);
    }
    const value = s.value === undefined ? null : s.value.slice();
    return { dot: { actor: s.actor, counter: safeNumber(s.counter, 'dot counter') }, value, hlc };
  });
  siblings.sort(compareSiblings);
  const record: VersionedRecord = { context, siblings };
  if (!recordWellFormed(record, limits)) throw new WireFormatError('record is not well formed');
  return record;
}

function checkActor(actor: string): void {
  if (RESERVED_ACTORS.has(actor)) throw new WireFormatError(`reserved actor name ${JSON.stringify(actor)}`);
  if (actor.length > ACTOR_CHARS_MAX) throw new WireFormatError(`actor name of ${actor.length} characters exceeds ${ACTOR_CHARS_MAX}`);
  checkText(actor, 'an actor name');
}

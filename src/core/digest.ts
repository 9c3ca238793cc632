// The anti-entropy digest of a replica: a fixed-shape Merkle tree over key-hash segments whose nodes are XOR sums
// of 64-bit entry hashes (Riak's "tictac" trees), so every write updates it in O(depth) with no rescan. Two
// replicas compare roots, then only the children that differ, down to the segments that hold differing keys.
// Pure: no IO, the hash is computed here (FNV-1a, two 32-bit lanes). See docs/anti-entropy.md.
import { assert } from './assert.js';
import type { VersionedRecord } from './record.js';
import { dotKey } from './vv.js';

/** A 64-bit hash as two unsigned 32-bit halves (JS bit operations are 32-bit). */
export interface Hash64 {
  readonly hi: number;
  readonly lo: number;
}

export const HASH_ZERO: Hash64 = Object.freeze({ hi: 0, lo: 0 });

export interface DigestShape {
  /** log2 of the number of leaf segments (keys are spread over them by hash). */
  readonly segmentsLog2: number;
  /** log2 of the fan-out of every inner node. segmentsLog2 must be a multiple of it. */
  readonly fanoutLog2: number;
}

/**
 * 65,536 segments (~1.5 keys each at 100,000 keys, so a differing segment costs about one record to compare)
 * under a fan-out of 16: 4 levels below the root, 16 hashes (256 B) per comparison step. Memory: ~1.2 MB.
 */
export const DIGEST_SHAPE_DEFAULT: DigestShape = Object.freeze({ segmentsLog2: 16, fanoutLog2: 4 });

const FNV_OFFSET_LO = 0x811c9dc5;
const FNV_OFFSET_HI = 0x050c5d1f; // a second, independent lane: FNV-1a with another offset basis
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `text`, in two lanes with different offsets (and a final mix). */
export function hashText(text: string): Hash64 {
  let lo = FNV_OFFSET_LO;
  let hi = FNV_OFFSET_HI;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    lo = Math.imul(lo ^ (c & 0xff), FNV_PRIME);
    lo = Math.imul(lo ^ (c >>> 8), FNV_PRIME);
    hi = Math.imul(hi ^ (c >>> 8), FNV_PRIME);
    hi = Math.imul(hi ^ (c & 0xff), FNV_PRIME);
  }
  return { hi: mix(hi ^ lo) >>> 0, lo: mix(lo) >>> 0 };
}

/** murmur3's 32-bit finalizer: spreads every input bit over the output. */
function mix(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x;
}

/**
 * The canonical text of a record's version state: its context and its siblings' dots (a dot names exactly one
 * write, so its value and clock add nothing). Two replicas hold the same record exactly when these match.
 */
export function versionSummary(record: VersionedRecord): string {
  const context = Object.keys(record.context)
    .sort()
    .map((actor) => `${actor}:${record.context[actor]}`)
    .join(',');
  const siblings = record.siblings
    .map((s) => `${dotKey(s.dot)}${s.value === null ? '-' : '+'}`)
    .sort()
    .join(',');
  return `${context}|${siblings}`;
}

/** The hash an entry contributes to its segment (undefined record: the key is absent, contributes nothing). */
export function entryHash(key: string, record: VersionedRecord | undefined): Hash64 {
  if (record === undefined) return HASH_ZERO;
  return hashText(`${key.length}:${key}\n${versionSummary(record)}`);
}

/** The segment of a key: from a hash of the key alone, so every replica files it in the same place. */
export function segmentOf(key: string, shape: DigestShape = DIGEST_SHAPE_DEFAULT): number {
  return hashText(key).lo >>> (32 - shape.segmentsLog2);
}

/** A node of the tree: its level (0 = root) and index within the level. */
export interface NodeRef {
  readonly level: number;
  readonly index: number;
}

export class MerkleDigest {
  readonly shape: DigestShape;
  /** Number of levels below the root; level `depth` holds the segments. */
  readonly depth: number;
  /** levels[l] holds 2 * (fanout^l) numbers: hi, lo for each node. */
  private readonly levels: Uint32Array[];
  private entries = 0;
  /** The keys of each non-empty segment (a few per segment), so an exchange can list a segment's entries. */
  private readonly segmentKeys = new Map<number, string[]>();

  constructor(shape: DigestShape = DIGEST_SHAPE_DEFAULT) {
    assert(Number.isInteger(shape.fanoutLog2) && shape.fanoutLog2 >= 1 && shape.fanoutLog2 <= 8, 'fan-out is 2..256');
    assert(Number.isInteger(shape.segmentsLog2) && shape.segmentsLog2 >= shape.fanoutLog2 && shape.segmentsLog2 <= 24, 'segments 2..2^24');
    assert(shape.segmentsLog2 % shape.fanoutLog2 === 0, 'segmentsLog2 is a multiple of fanoutLog2');
    this.shape = shape;
    this.depth = shape.segmentsLog2 / shape.fanoutLog2;
    this.levels = [];
    for (let l = 0; l <= this.depth; l++) this.levels.push(new Uint32Array(2 << (l * shape.fanoutLog2)));
  }

  /** Keys with a record in the digest. */
  get size(): number {
    return this.entries;
  }

  /** Replaces the key's contribution `before` by `after` (undefined = absent). O(depth). */
  update(key: string, before: VersionedRecord | undefined, after: VersionedRecord | undefined): void {
    const old = entryHash(key, before);
    const now = entryHash(key, after);
    this.entries += (after === undefined ? 0 : 1) - (before === undefined ? 0 : 1);
    assert(this.entries >= 0, 'update() is told the true previous record');
    const segment = segmentOf(key, this.shape);
    if (before === undefined && after !== undefined) {
      const keys = this.segmentKeys.get(segment);
      if (keys === undefined) this.segmentKeys.set(segment, [key]);
      else keys.push(key);
    } else if (before !== undefined && after === undefined) {
      const keys = this.segmentKeys.get(segment);
      const at = keys === undefined ? -1 : keys.indexOf(key);
      assert(keys !== undefined && at >= 0, 'a removed key was in its segment');
      keys[at] = keys[keys.length - 1] as string;
      keys.pop();
      if (keys.length === 0) this.segmentKeys.delete(segment);
    }
    const hi = (old.hi ^ now.hi) >>> 0;
    const lo = (old.lo ^ now.lo) >>> 0;
    if (hi === 0 && lo === 0) return;
    let index = segment;
    for (let l = this.depth; l >= 0; l--) {
      const level = this.levels[l] as Uint32Array;
      level[2 * index] = ((level[2 * index] as number) ^ hi) >>> 0;
      level[2 * index + 1] = ((level[2 * index + 1] as number) ^ lo) >>> 0;
      index >>>= this.shape.fanoutLog2;
    }
  }

  /** The keys filed in `segment` (unordered). */
  keysIn(segment: number): readonly string[] {
    return this.segmentKeys.get(segment) ?? [];
  }

  root(): Hash64 {
    return this.node({ level: 0, index: 0 });
  }

  node(ref: NodeRef): Hash64 {
    assert(ref.level >= 0 && ref.level <= this.depth, 'a level of the tree');
    const level = this.levels[ref.level] as Uint32Array;
    assert(ref.index >= 0 && 2 * ref.index < level.length, 'an index within the level');
    return { hi: level[2 * ref.index] as number, lo: level[2 * ref.index + 1] as number };
  }

  /** The hashes of a node's children, in order (what one comparison step sends). */
  children(ref: NodeRef): Hash64[] {
    assert(ref.level < this.depth, 'segments have no children');
    const fanout = 1 << this.shape.fanoutLog2;
    const out: Hash64[] = [];
    for (let i = 0; i < fanout; i++) out.push(this.node({ level: ref.level + 1, index: ref.index * fanout + i }));
    return out;
  }

  /** The segments (leaf indexes) under a node. */
  segmentRange(ref: NodeRef): { first: number; count: number } {
    const count = 1 << ((this.depth - ref.level) * this.shape.fanoutLog2);
    return { first: ref.index * count, count };
  }
}

export function hashesEqual(a: Hash64, b: Hash64): boolean {
  return a.hi === b.hi && a.lo === b.lo;
}

/**
 * The segments where two digests differ, found top-down as two devices would (comparing children only under
 * differing parents); `compared` counts the hashes looked at, i.e. what the exchange costs.
 */
export function differingSegments(a: MerkleDigest, b: MerkleDigest): { segments: number[]; compared: number } {
  assert(a.shape.segmentsLog2 === b.shape.segmentsLog2 && a.shape.fanoutLog2 === b.shape.fanoutLog2, 'same shape');
  let compared = 1;
  if (hashesEqual(a.root(), b.root())) return { segments: [], compared };
  let frontier: NodeRef[] = [{ level: 0, index: 0 }];
  const fanout = 1 << a.shape.fanoutLog2;
  for (let level = 0; level < a.depth; level++) {
    const next: NodeRef[] = [];
    for (const ref of frontier) {
      const ca = a.children(ref);
      const cb = b.children(ref);
      compared += fanout;
      for (let i = 0; i < fanout; i++) {
        if (!hashesEqual(ca[i] as Hash64, cb[i] as Hash64)) next.push({ level: level + 1, index: ref.index * fanout + i });
      }
    }
    frontier = next;
  }
  return { segments: frontier.map((r) => r.index), compared };
}

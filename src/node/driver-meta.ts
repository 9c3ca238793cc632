// What the device driver keeps in the store's meta values (names and how each is read back at start-up), and the
// start-up scan of the records into the anti-entropy digest.
import type { Hlc } from '../core/hlc.js';
import type { MembershipConfig } from '../core/membership.js';
import { MerkleDigest } from '../core/digest.js';
import type { VersionedRecord } from '../core/record.js';
import {
  META,
  META_ACCEPTOR,
  META_CONFIG_HISTORY,
  META_HLC,
  META_JOIN_TRANSFER,
  META_MEMBERSHIP,
  META_TRANSFER_RESUME,
  type MetaEntry,
} from '../storage/meta.js';
import type { StoragePort } from '../storage/port.js';

// The names and their codecs live in src/storage/meta.ts (one table for every meta value); re-exported here.
export { META_ACCEPTOR, META_CONFIG_HISTORY, META_HLC, META_JOIN_TRANSFER, META_MEMBERSHIP, META_TRANSFER_RESUME };

/** Records read per scan step while building the digest at start-up. */
const DIGEST_SCAN_BATCH = 1024;

/** The digest of everything in `store` (one scan; at start-up, before any write); `each` sees every entry. */
export function buildDigest(store: StoragePort, each?: (key: string, record: VersionedRecord) => void): MerkleDigest {
  const digest = new MerkleDigest();
  let after: string | undefined;
  for (;;) {
    const entries = store.scan(after, DIGEST_SCAN_BATCH);
    for (const entry of entries) {
      digest.update(entry.key, undefined, entry.record);
      each?.(entry.key, entry.record);
    }
    if (entries.length < DIGEST_SCAN_BATCH) return digest;
    after = entries[entries.length - 1]?.key;
  }
}

/** `text` decoded by `entry`'s codec; undefined when absent or unreadable (for values whose loss costs only work). */
function decodeOrUndefined<T>(entry: MetaEntry<T>, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return entry.codec.decode(text);
  } catch {
    return undefined;
  }
}

/** The stored clock (META_HLC); undefined if absent or unreadable (the clock then starts from the wall clock). */
export function parseHlc(text: string | undefined): Hlc | undefined {
  return decodeOrUndefined(META.hlc, text);
}

/** The stored resume point (META_TRANSFER_RESUME); an unreadable one only costs a full transfer. */
export function parseTransferResume(text: string | undefined): { epoch: number; after: string } | undefined {
  return decodeOrUndefined(META.transferResume, text);
}

/**
 * The kept configurations (META_CONFIG_HISTORY); anything unreadable is dropped, not fatal: the history only
 * helps peers that are behind, and the current configuration is stored on its own.
 */
export function parseConfigHistory(text: string | undefined): MembershipConfig[] {
  return decodeOrUndefined<MembershipConfig[]>(META.configHistory, text) ?? [];
}

// What the device driver keeps in the store's meta values (names and how each is read back at start-up), and the
// start-up scan of the records into the anti-entropy digest.
import type { Hlc } from '../core/hlc.js';
import { type MembershipConfig, configProblem } from '../core/membership.js';
import { MerkleDigest } from '../core/digest.js';
import type { VersionedRecord } from '../core/record.js';
import type { StoragePort } from '../storage/port.js';

export const META_MEMBERSHIP = 'membership';
/** The committed configurations kept with their proofs, oldest first, JSON (ReplicaCoreOptions.history). */
export const META_CONFIG_HISTORY = 'configHistory';
/** The Paxos acceptor state for the next epoch's decision (src/core/paxos.ts), JSON. */
export const META_ACCEPTOR = 'acceptor';
/** How far data-sync pushes of an epoch are durable here, JSON {epoch, after}: a later push resumes after it. */
export const META_TRANSFER_RESUME = 'transferResume';
/**
 * 'pending' from the moment a new device is admitted until a complete push of the cluster's data reached it;
 * 'done' after (or once catch-up rounds took over). Absent: not a joined device (founder, older store).
 */
export const META_JOIN_TRANSFER = 'joinTransfer';
/**
 * The hybrid logical clock, JSON {wallMs, logical}: staged before the record of every write coordinated here
 * (same commit or an earlier one), so a record durable here never carries a timestamp above the clock durable
 * here, and a restart continues from it whatever the wall clock says. Not a scan of the records for their
 * highest timestamp: stored records include remote ones this clock refused to follow (far ahead), and own
 * versions since superseded or purged. Left open: a write whose local commit a crash lost may already be on
 * peers with a later timestamp; only the last-writer-wins order among concurrent siblings could notice.
 */
export const META_HLC = 'hlc';

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

/** The stored clock (META_HLC); undefined if absent or unreadable (the clock then starts from the wall clock). */
export function parseHlc(text: string | undefined): Hlc | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { wallMs, logical } = parsed as { wallMs?: unknown; logical?: unknown };
    const safe = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    return safe(wallMs) && safe(logical) ? { wallMs, logical } : undefined;
  } catch {
    return undefined;
  }
}

export function parseTransferResume(text: string | undefined): { epoch: number; after: string } | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { epoch, after } = parsed as { epoch?: unknown; after?: unknown };
    return typeof epoch === 'number' && Number.isSafeInteger(epoch) && typeof after === 'string' ? { epoch, after } : undefined;
  } catch {
    return undefined; // an unreadable resume point only costs a full transfer
  }
}

/**
 * The kept configurations (META_CONFIG_HISTORY); anything unreadable is dropped, not fatal: the history only
 * helps peers that are behind, and the current configuration is stored on its own.
 */
export function parseConfigHistory(text: string | undefined): MembershipConfig[] {
  if (text === undefined) return [];
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) return [];
    return (parsed as MembershipConfig[]).filter((c) => typeof c === 'object' && c !== null && Array.isArray(c.previousVoters) && configProblem(c) === undefined);
  } catch {
    return [];
  }
}

// The audit log: an append-only, size-bounded JSON-lines file in the data dir of what changed this device's
// cluster or was refused — membership changes, operator actions, quorum failures, rejected API credentials.
// Two files at most (audit.log and audit.log.1), so it never outgrows AUDIT_BYTES_MAX twice.
import { appendFileSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { AUDIT_FILE, AUDIT_ROTATED_SUFFIX } from '../config/files.js';

export { AUDIT_FILE };
/** Size at which audit.log becomes audit.log.1 (replacing the previous one): ~5,000 entries. */
export const AUDIT_BYTES_MAX = 1024 * 1024;
/** Repeated events of one kind (quorum failures, refused requests) are written at most this often, with a count. */
export const AUDIT_REPEAT_INTERVAL_MS = 10_000;
/** Entries one read returns at most. */
export const AUDIT_READ_MAX = 1000;

export type AuditKind =
  | 'started'
  | 'stopped'
  | 'membership'
  | 'operator'
  | 'quorum-failure'
  | 'unauthorized'
  | 'catch-up';

export interface AuditEntry {
  readonly at: string;
  readonly kind: AuditKind;
  readonly [field: string]: unknown;
}

export class AuditLog {
  private readonly path: string;
  private size: number;
  /** Per repeated kind: when it was last written and how many happened since. */
  private readonly repeats = new Map<string, { lastMs: number; suppressed: number }>();

  constructor(
    dataDir: string,
    private readonly onError: (error: unknown) => void,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.path = joinPath(dataDir, AUDIT_FILE);
    try {
      this.size = statSync(this.path).size;
    } catch {
      this.size = 0;
    }
  }

  append(kind: AuditKind, fields: Record<string, unknown> = {}): void {
    const line = `${JSON.stringify({ at: new Date(this.nowMs()).toISOString(), kind, ...fields })}\n`;
    try {
      if (this.size + line.length > AUDIT_BYTES_MAX) {
        renameSync(this.path, `${this.path}${AUDIT_ROTATED_SUFFIX}`);
        this.size = 0;
      }
      appendFileSync(this.path, line, { mode: 0o600 });
      this.size += Buffer.byteLength(line);
    } catch (error) {
      this.onError(error); // an audit write failing must not take the daemon down
    }
  }

  /** For frequent events: writes the first, then at most one per interval carrying how many were folded in. */
  appendRepeated(kind: AuditKind, key: string, fields: Record<string, unknown>): void {
    const id = `${kind}:${key}`;
    const now = this.nowMs();
    const seen = this.repeats.get(id);
    if (seen !== undefined && now - seen.lastMs < AUDIT_REPEAT_INTERVAL_MS) {
      seen.suppressed += 1;
      return;
    }
    this.append(kind, { ...fields, ...(seen !== undefined && seen.suppressed > 0 ? { repeatedSinceLast: seen.suppressed } : {}) });
    this.repeats.set(id, { lastMs: now, suppressed: 0 });
    if (this.repeats.size > 1000) this.repeats.clear();
  }

  /** The newest `limit` entries (oldest first), optionally only those of `kind`. */
  read(limit: number, kind?: AuditKind): AuditEntry[] {
    const entries: AuditEntry[] = [];
    for (const file of [`${this.path}${AUDIT_ROTATED_SUFFIX}`, this.path]) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          const entry = JSON.parse(line) as AuditEntry;
          if (kind === undefined || entry.kind === kind) entries.push(entry);
        } catch {
          // a line cut by a crash mid-write: skip it
        }
      }
    }
    return entries.slice(-Math.min(limit, AUDIT_READ_MAX));
  }
}

// The change feed behind /watch: every record stored on this device (a client write here, a replica write,
// a repair, gossip or a data stream) as a numbered event in a bounded ring, so a watcher that reconnects with
// Last-Event-ID gets what it missed (or is told to start over when that fell out of the ring).
import { randomBytes } from 'node:crypto';
import type { VersionedRecord } from '../core/record.js';

export interface ChangeEvent {
  /** Numbered from 1 per boot; sent as the SSE id `<boot>-<seq>` (see eventId), unique across restarts. */
  readonly seq: number;
  readonly key: string;
  /** put: one live value; delete: only tombstones; conflict: concurrent versions (siblings). */
  readonly kind: 'put' | 'delete' | 'conflict';
  readonly siblings: number;
  /** Wall time the change was stored here (ms since the epoch; formatted only when sent). */
  readonly atMs: number;
}

export type ChangeListener = (event: ChangeEvent) => void;

/** Events kept for resuming watchers (~150 B each). */
export const CHANGE_RING_EVENTS = 10_000;
/** Watchers at once (each holds a connection and a listener). */
export const WATCHERS_MAX = 64;

export class ChangeFeed {
  readonly boot = randomBytes(4).toString('hex');
  /** Circular: event seq s lives at (s - 1) % ringEvents while it is among the last ringEvents. */
  private readonly ring: Array<ChangeEvent | undefined>;
  private seq = 0;
  private readonly listeners = new Set<ChangeListener>();

  constructor(private readonly ringEvents = CHANGE_RING_EVENTS) {
    this.ring = new Array<ChangeEvent | undefined>(ringEvents);
  }

  /** A record was stored for `key` (the runtime calls this for every persist). */
  record(key: string, record: VersionedRecord, nowMs: number): void {
    // Called for every record a bulk transfer stores: no allocation beyond the event itself.
    let live = false;
    for (const s of record.siblings) if (s.value !== null) live = true;
    const kind = !live ? 'delete' : record.siblings.length > 1 ? 'conflict' : 'put';
    this.seq += 1;
    const event: ChangeEvent = { seq: this.seq, key, kind, siblings: record.siblings.length, atMs: nowMs };
    this.ring[(this.seq - 1) % this.ringEvents] = event;
    for (const listener of this.listeners) listener(event);
  }

  /** The event's id for Last-Event-ID: a different boot means "start over". */
  eventId(event: ChangeEvent): string {
    return `${this.boot}-${event.seq}`;
  }

  get watchers(): number {
    return this.listeners.size;
  }

  /**
   * Events after `lastEventId` (undefined: none, only new ones). `gap` is true when the id is from another boot
   * or older than the ring: the watcher missed changes and should re-list.
   */
  since(lastEventId: string | undefined): { events: ChangeEvent[]; gap: boolean } {
    if (lastEventId === undefined) return { events: [], gap: false };
    const first = Math.max(1, this.seq - this.ringEvents + 1);
    const match = /^([0-9a-f]{8})-([0-9]{1,15})$/.exec(lastEventId);
    if (match === null || match[1] !== this.boot) return { events: this.range(first), gap: true };
    const after = Math.min(Number(match[2]), this.seq);
    return { events: this.range(Math.max(first, after + 1)), gap: after < first - 1 };
  }

  private range(from: number): ChangeEvent[] {
    const out: ChangeEvent[] = [];
    for (let s = from; s <= this.seq; s++) out.push(this.ring[(s - 1) % this.ringEvents] as ChangeEvent);
    return out;
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

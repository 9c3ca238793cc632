// Hybrid logical clocks: a wall-clock-close timestamp that never goes backwards and orders causally
// related events; used only to pick a deterministic last-writer-wins winner among siblings on request.
export interface Hlc {
  /** Milliseconds since the epoch, as far as the writer's clock (or a causal predecessor) said. */
  readonly wallMs: number;
  /** Tie breaker for events within the same wallMs. */
  readonly logical: number;
}

export const HLC_ZERO: Hlc = Object.freeze({ wallMs: 0, logical: 0 });

export function hlcCompare(a: Hlc, b: Hlc): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  return 0;
}

/**
 * Largest logical counter issued: one more moves wallMs on by 1 ms instead (which orders after every logical
 * value of the previous millisecond), so a timestamp adopted from elsewhere with a huge counter can never push
 * ours past Number.MAX_SAFE_INTEGER (the wire and the store refuse unsafe integers). 2^32 - 1 ticks within one
 * millisecond do not happen; only a device whose clock is far behind its floor (see ReplicaCore's `hlc`) counts
 * that high, at one tick per write.
 */
export const HLC_LOGICAL_MAX = 0xffff_ffff;

/**
 * Timestamp for a local event at physical time physicalMs, after the last one issued. Never throws, whatever
 * `last` holds (it may come from a remote record): it stays within safe integers, and strictly after `last`
 * unless `last` is already the largest representable timestamp.
 */
export function hlcTick(last: Hlc, physicalMs: number): Hlc {
  if (physicalMs > last.wallMs && physicalMs <= Number.MAX_SAFE_INTEGER) return { wallMs: physicalMs, logical: 0 };
  if (last.logical < HLC_LOGICAL_MAX) return { wallMs: last.wallMs, logical: last.logical + 1 };
  if (last.wallMs < Number.MAX_SAFE_INTEGER) return { wallMs: last.wallMs + 1, logical: 0 };
  return { wallMs: Number.MAX_SAFE_INTEGER, logical: HLC_LOGICAL_MAX };
}

/**
 * Our clock after seeing a remote timestamp: the later of the two, unless the remote one is more than
 * `driftMaxMs` ahead of our physical time. Such a timestamp (a device whose clock runs far ahead, or a forged
 * record) is not adopted, so it cannot drag every device's clock after it; the record itself is still stored.
 */
export function hlcAdopt(last: Hlc, remote: Hlc, physicalMs: number, driftMaxMs: number): Hlc {
  if (!(remote.wallMs <= physicalMs + driftMaxMs)) return last;
  return hlcCompare(remote, last) > 0 ? remote : last;
}

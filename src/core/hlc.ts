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

/** Timestamp for a local event at physical time physicalMs, after the last one issued. */
export function hlcTick(last: Hlc, physicalMs: number): Hlc {
  if (physicalMs > last.wallMs) return { wallMs: physicalMs, logical: 0 };
  return { wallMs: last.wallMs, logical: last.logical + 1 };
}

/** Clock state after observing a remote timestamp (receive rule). */
export function hlcObserve(last: Hlc, remote: Hlc, physicalMs: number): Hlc {
  const wallMs = Math.max(last.wallMs, remote.wallMs, physicalMs);
  if (wallMs === last.wallMs && wallMs === remote.wallMs) {
    return { wallMs, logical: Math.max(last.logical, remote.logical) + 1 };
  }
  if (wallMs === last.wallMs) return { wallMs, logical: last.logical + 1 };
  if (wallMs === remote.wallMs) return { wallMs, logical: remote.logical + 1 };
  return { wallMs, logical: 0 };
}

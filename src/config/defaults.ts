// Every default of the daemon in one place, with units in names and the reason for each value
// (in the spirit of hashicorp/memberlist's config.go). Flags and environment override these.

export const DEFAULTS = {
  /** Where a device keeps its identity, cluster key, membership and data. Relative to the working dir. */
  dataDir: './data',
  /** libp2p listen address: all IPv4 interfaces so LAN peers can reach us; 7400 is quorumd's port. */
  listen: ['/ip4/0.0.0.0/tcp/7400'] as readonly string[],
  /** Local status/API HTTP endpoint: loopback by default; beyond it, requests need the API token (src/http/access.ts). */
  http: '127.0.0.1:7401',
  /** Client operation deadline: a LAN round trip is ~1 ms, an fsync ~0.2 ms; 3 s rides out a slow SD card. */
  requestTimeoutMs: 3_000,
  /**
   * Longest `wait=LEVEL&timeoutMs=MS` a client may ask of a write (HTTP API): the write keeps sending its record
   * to replicas (also to members added meanwhile) until then. A minute covers a device rebooting; the tombstone
   * grace below is derived from it (tombstoneGraceMinMs).
   */
  writeWaitMsMax: 60_000,
  /** Wrong-key or dead-address dials fail fast on a LAN; libp2p's 6 s default makes joins feel stuck. */
  dialTimeoutMs: 2_000,
  /** How often to redial voters we are not connected to: quick recovery after a restart, little noise. */
  reconnectIntervalMs: 1_000,
  /**
   * Time a client has to send a request's headers over HTTP (node checks it every second). A local or LAN client
   * sends them in one packet within milliseconds; slow-header (slowloris) connections are closed after this.
   */
  httpHeadersTimeoutMs: 5_000,
  /**
   * Open HTTP connections per client address: a client's pool of 64 requests fits with room to spare, and one
   * address cannot take more than half of the API's 256 connections (more are closed at once).
   */
  httpConnectionsPerIpMax: 128,
  /** Largest value accepted over HTTP (413 above it); frames on the wire are sized to carry it. */
  valueBytesMax: 1024 * 1024,
  /** Largest key in UTF-8 bytes. */
  keyBytesMax: 1024,
  /** Client operations in flight per device before new ones get 503 (bounded memory). */
  opsInFlightMax: 10_000,
  /**
   * Records per data-stream batch (syncs after a membership change); six batches are in flight per stream
   * (STREAM_WINDOW, src/core/streams.ts), so the sender reads the next while the receiver fsyncs one. Measured on
   * 100,000 small records when the window was three batches: 1,024 joined a device in 5.6–6.9 s, 2,048 in
   * 6.2–6.6 s, 4,096 in 7.5 s (bigger batches overlap less). Cores built without a value (tests) use it too.
   */
  transferBatchRecords: 1_024,
  /** Bytes per data-stream batch (kept well under the 4 MiB wire frame limit). */
  transferBatchBytes: 1024 * 1024,
  /** A data stream without a batch of progress for this long fails (the sync is retried later). */
  transferIdleMs: 10_000,
  /** Time a candidate waits for the answer to a join request; admission includes a full data sync. */
  joinTimeoutMs: 60_000,
  /** Pause between join attempts of a device that holds the key but is not a member yet. */
  joinRetryMs: 500,
  /**
   * Admit devices that hold the cluster key without an operator's `quorumd approve` (a home LAN's default), as
   * long as the cluster never removed a device: a removed device that deletes its peer.key is a new identity
   * holding the key, so after the first removal a new identity needs `approve` or an operator's admission window
   * (src/node/admission.ts). Setting up a fleet from scratch needs no step beyond copying the key.
   */
  autoAdmit: true,
  /** `quorumd admit` without --for: long enough to start a device and let it join, short enough to forget. */
  admissionWindowMsDefault: 10 * 60 * 1000,
  /**
   * Longest admission window an operator may open at once (400 above it): a window left open admits any key
   * holder, a removed device with a new peer.key included; a longer setup session opens another.
   */
  admissionWindowMsMax: 60 * 60 * 1000,
  /**
   * Voters at most; further devices join as learners (full replicas that do not count in quorums), so a fleet
   * of 30 Pis does not need 16 acks per write. 5 voters survive 2 failures.
   */
  maxVoters: 5,
  /**
   * Remove a voter that has been down this long (0: never). Off by default: liveness alone must never change
   * N, or a partition could shrink each side's quorum until both sides accept writes.
   */
  autoRemoveAfterMs: 0,
  /** A voter finishes a voter change (sync + finalize) itself if its coordinator has not within this time. */
  jointTakeoverMs: 3_000,
  /** Attempts of one membership change that keeps losing its epoch to concurrent changes. */
  changeAttemptsMax: 8,
  /**
   * Heartbeats to every connected member; with the failure detector's defaults (src/core/failure-detector.ts)
   * a silent peer is suspect after ~1.7 s and down after ~1.9 s, and one lost heartbeat changes nothing.
   */
  heartbeatIntervalMs: 500,
  /**
   * Encoded bytes queued for one peer before a send is refused: a few full frames, so a slow or stuck peer holds
   * at most this much memory here (the sender sees the refusal as a failed send and the core retries or hints).
   */
  queuedBytesPerPeerMax: 16 * 1024 * 1024,
  /** Keys one `GET /kv?prefix=` page lists without `limit`: a screenful for a person, a cheap page for a script. */
  listPageKeys: 100,
  /** Entries `GET /audit` answers without `limit` (the newest ones). */
  auditPageEntries: 100,
  /** mDNS query interval: a device that comes back is found (and redialed) within about this long. */
  mdnsQueryIntervalMs: 1_000,
  /** Time to finish in-flight requests on SIGTERM before closing anyway (we must exit within 5 s). */
  shutdownGraceMs: 2_000,
  /**
   * Mean time between anti-entropy rounds (each wait drawn from 0.5–1.5× of it, so devices do not gossip in
   * lockstep). An idle round costs one request and one reply of ~50 bytes, so 2 s is cheap; a round that finds
   * differences is followed by another at once, so repair itself never waits for the interval.
   */
  antiEntropyIntervalMs: 2_000,
  /**
   * Bytes per second anti-entropy rounds started here may move (requests and replies), so repair never starves
   * foreground writes: 2 MiB/s is ~15 % of a Pi's 2.4 GHz Wi-Fi and a tenth of 100 Mbit Ethernet. A one-second
   * burst is allowed, so small repairs are never paced.
   */
  antiEntropyBytesPerSec: 2 * 1024 * 1024,
  /** An anti-entropy request without reply for this long ends the round (the peer is slow or gone). */
  antiEntropyRequestTimeoutMs: 10_000,
  /**
   * A tombstone is purged only once every member is known to hold it (causal stability) and no sooner than
   * this after it was stored here: a write or repair still in flight could otherwise re-create the key. The
   * longest-lived such sender is a client operation that began before the delete: a write re-sends its record
   * (to new members too) until its deadline, at most max(writeWaitMsMax, requestTimeoutMs) after it began, and
   * a read repairs late repliers until requestTimeoutMs. So the grace must be at least that plus
   * tombstoneGraceMarginMs (tombstoneGraceMinMs(); settings refuse less): 60 s + 30 s = 90 s with the defaults.
   * Two minutes leave room to raise requestTimeoutMs to 90 s without touching this; a tombstone costs ~100 B.
   */
  tombstoneGraceMs: 120_000,
  /**
   * Added to the longest operation deadline for the tombstone grace: a message sent just before its deadline
   * may still sit in a send queue (behind a data stream on a slow link) or in a busy receiver's socket, and the
   * devices' clocks may run at slightly different rates over the window.
   */
  tombstoneGraceMarginMs: 30_000,
  /**
   * A remote timestamp (hybrid logical clock) further than this ahead of our wall clock is not adopted by our
   * clock (the record is stored all the same): one device whose clock runs ahead, or a forged timestamp, must
   * not drag every device's timestamps after it, which would make that device's writes win every
   * last-writer-wins choice. NTP keeps LAN devices within milliseconds; a 20 ppm crystal left unsynced drifts
   * ~1.7 s a day, so a minute tolerates a month without NTP. Closer devices' timestamps are adopted as usual.
   */
  hlcDriftMaxMs: 60_000,
  /**
   * Hinted handoff: keys a peer missed, kept (durably, ~100 B each) to hand over when it is back. Beyond this
   * many, anti-entropy alone repairs the rest (it finds every difference anyway, only later).
   */
  hintsMax: 10_000,
  /** A hint older than this is dropped: by then anti-entropy has long repaired the key. Cassandra's window. */
  hintTtlMs: 3 * 60 * 60 * 1000,
  /**
   * Decoded records the store keeps in memory (least recently used out), saving a SELECT and a decode per
   * hot-key access. Bounded in bytes as well as entries: with entries alone, 16,384 values of the 1 MiB maximum
   * could hold ~16 GiB (2,000 of them kept 2.45 GiB of RSS). 32 MiB is ~6 % of a 512 MiB Pi Zero 2, holds every
   * entry the count allows for records up to ~2 KiB (typical values are far smaller), and 32 maximal values.
   */
  recordCacheBytesMax: 32 * 1024 * 1024,
  /** Entries of that cache at most (small records: the per-entry overhead is what counts there). */
  recordCacheEntriesMax: 16_384,
  /** Log level: info logs membership changes, catch-ups and failures, not every request. */
  logLevel: 'info',
  /** Dots reserved per durable counter write: a crash skips at most this many, never reuses one. */
  dotReserveBlock: 10_000,
} as const;

export type Defaults = typeof DEFAULTS;

/**
 * Shortest safe tombstone grace for a request timeout (see DEFAULTS.tombstoneGraceMs): the longest deadline of
 * an operation that may still send an old record, max(writeWaitMsMax, requestTimeoutMs), plus the margin.
 */
export function tombstoneGraceMinMs(requestTimeoutMs: number): number {
  return Math.max(DEFAULTS.writeWaitMsMax, requestTimeoutMs) + DEFAULTS.tombstoneGraceMarginMs;
}

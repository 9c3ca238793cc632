// The durable meta values (StoragePort.getMeta/setMeta) in one table: each name with the codec of its value,
// so a name is spelled once and a value is written and read back by one pair of functions.
import type { AcceptorState } from '../core/paxos.js';
import type { Hlc } from '../core/hlc.js';
import { type MembershipConfig, configProblem } from '../core/membership.js';
import type { StoragePort } from './port.js';

/** A stored meta value that is not a valid value of its entry (`problem` says why). */
export class MetaDecodeError extends Error {
  constructor(
    readonly meta: string,
    readonly problem: string,
  ) {
    super(`meta ${meta}: ${problem}`);
    this.name = 'MetaDecodeError';
  }
}

/** How one meta value is stored: `decode(encode(v))` is `v`; decode throws on what encode never writes. */
export interface MetaCodec<T> {
  encode(value: T): string;
  /** The value of a stored text; throws MetaDecodeError when it is not a valid value (or SyntaxError: not JSON). */
  decode(text: string): T;
}

export interface MetaEntry<T> {
  readonly name: string;
  readonly codec: MetaCodec<T>;
}

/** The current membership configuration, JSON (src/node/runtime.ts writes it once adopted). */
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
/** Highest dot counter durably reserved (src/node/dots.ts), decimal. */
export const META_DOT_RESERVED = 'dotReserved';
/** Dot-actor incarnation (see nextDotActor in src/node/daemon.ts), decimal. */
export const META_INCARNATION = 'incarnation';
/** Whether the last run closed the store cleanly: 'true' / 'false'. */
export const META_CLEAN_SHUTDOWN = 'cleanShutdown';
/** This store's id (MemberInfo.store): random, taken when the store is created, never changed; 32 hex digits. */
export const META_STORE_ID = 'storeId';
/** The concrete listen addresses (ports resolved) of the last start, reused when --listen is not given; JSON. */
export const META_LISTEN = 'listen';
/** Last known dialable addresses per peer, JSON {peer: [multiaddr]}. */
export const META_ADDRESS_BOOK = 'addressBook';
/** Prefix of the hinted-handoff entries `hint:<peer>:<key>` = creation time (src/node/hints.ts). */
export const META_HINT_PREFIX = 'hint:';

const json = <T>(): MetaCodec<T> => ({ encode: (value) => JSON.stringify(value), decode: (text) => JSON.parse(text) as T });

/** A plain object of a JSON text, or MetaDecodeError. */
function jsonObject(meta: string, text: string): Record<string, unknown> {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null) throw new MetaDecodeError(meta, 'not a JSON object');
  return parsed as Record<string, unknown>;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** A non-negative safe integer as decimal text. */
function countCodec(meta: string, what: string): MetaCodec<number> {
  return {
    encode: (value) => String(value),
    decode: (text) => {
      const n = Number(text);
      if (!isCount(n)) throw new MetaDecodeError(meta, `corrupt ${what} ${JSON.stringify(text)}`);
      return n;
    },
  };
}

export const META = {
  membership: {
    name: META_MEMBERSHIP,
    codec: {
      encode: (config: MembershipConfig) => JSON.stringify(config),
      decode: (text: string): MembershipConfig => {
        // Configurations written before joint phases existed have no previousVoters.
        const config = { previousVoters: [], ...(JSON.parse(text) as Partial<MembershipConfig>) } as MembershipConfig;
        const problem = configProblem(config);
        if (problem !== undefined) throw new MetaDecodeError(META_MEMBERSHIP, problem);
        return config;
      },
    },
  },
  configHistory: {
    name: META_CONFIG_HISTORY,
    codec: {
      encode: (history: readonly MembershipConfig[]) => JSON.stringify(history),
      /**
       * The readable configurations of the list: an unreadable one is dropped, not fatal (the history only helps
       * peers that are behind, and the current configuration is stored on its own).
       */
      decode: (text: string): MembershipConfig[] => {
        const parsed = JSON.parse(text) as unknown;
        if (!Array.isArray(parsed)) throw new MetaDecodeError(META_CONFIG_HISTORY, 'not a JSON array');
        return (parsed as MembershipConfig[]).filter((c) => typeof c === 'object' && c !== null && Array.isArray(c.previousVoters) && configProblem(c) === undefined);
      },
    },
  },
  acceptor: {
    name: META_ACCEPTOR,
    codec: {
      encode: (state: AcceptorState) => JSON.stringify(state),
      decode: (text: string): AcceptorState => {
        const state = JSON.parse(text) as AcceptorState | null;
        if (!Number.isSafeInteger(state?.slot) || typeof state?.promised?.round !== 'number') {
          throw new MetaDecodeError(META_ACCEPTOR, 'invalid acceptor state');
        }
        return state;
      },
    },
  },
  transferResume: {
    name: META_TRANSFER_RESUME,
    codec: {
      encode: (resume: { epoch: number; after: string }) => JSON.stringify({ epoch: resume.epoch, after: resume.after }),
      decode: (text: string): { epoch: number; after: string } => {
        const { epoch, after } = jsonObject(META_TRANSFER_RESUME, text);
        if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || typeof after !== 'string') {
          throw new MetaDecodeError(META_TRANSFER_RESUME, 'not {epoch, after}');
        }
        return { epoch, after };
      },
    },
  },
  joinTransfer: {
    name: META_JOIN_TRANSFER,
    codec: {
      encode: (state: 'pending' | 'done') => state,
      decode: (text: string): 'pending' | 'done' => {
        if (text !== 'pending' && text !== 'done') throw new MetaDecodeError(META_JOIN_TRANSFER, `unknown state ${JSON.stringify(text)}`);
        return text;
      },
    },
  },
  hlc: {
    name: META_HLC,
    codec: {
      encode: (hlc: Hlc) => JSON.stringify(hlc),
      decode: (text: string): Hlc => {
        const { wallMs, logical } = jsonObject(META_HLC, text);
        if (!isCount(wallMs) || !isCount(logical)) throw new MetaDecodeError(META_HLC, 'not {wallMs, logical}');
        return { wallMs, logical };
      },
    },
  },
  dotReserved: { name: META_DOT_RESERVED, codec: countCodec(META_DOT_RESERVED, 'dot reservation') },
  incarnation: { name: META_INCARNATION, codec: countCodec(META_INCARNATION, 'incarnation') },
  cleanShutdown: {
    name: META_CLEAN_SHUTDOWN,
    // Anything but 'true' reads as an unclean stop (the safe side: a fresh incarnation).
    codec: { encode: (clean: boolean) => (clean ? 'true' : 'false'), decode: (text: string) => text === 'true' },
  },
  storeId: {
    name: META_STORE_ID,
    codec: {
      encode: (id: string) => id,
      decode: (text: string): string => {
        if (!/^[0-9a-f]{32}$/.test(text)) throw new MetaDecodeError(META_STORE_ID, `corrupt store id ${JSON.stringify(text)}`);
        return text;
      },
    },
  },
  listen: { name: META_LISTEN, codec: json<string[]>() },
  addressBook: { name: META_ADDRESS_BOOK, codec: json<Record<string, string[]>>() },
} as const satisfies Record<string, MetaEntry<unknown>>;

/** The stored value of `entry`; undefined when absent. Throws what the codec throws on an unreadable value. */
export function readMeta<T>(store: Pick<StoragePort, 'getMeta'>, entry: MetaEntry<T>): T | undefined {
  const text = store.getMeta(entry.name);
  return text === undefined ? undefined : entry.codec.decode(text);
}

/**
 * The stored value of `entry`; undefined when absent or unreadable. Only for values whose loss costs work, not
 * safety (a clock that restarts from the wall clock, a transfer that restarts from the beginning).
 */
export function readMetaOrUndefined<T>(store: Pick<StoragePort, 'getMeta'>, entry: MetaEntry<T>): T | undefined {
  try {
    return readMeta(store, entry);
  } catch {
    return undefined;
  }
}

/** Writes `value` as the stored value of `entry` (durable when the promise resolves). */
export function writeMeta<T>(store: Pick<StoragePort, 'setMeta'>, entry: MetaEntry<T>, value: T): Promise<void> {
  return store.setMeta(entry.name, entry.codec.encode(value));
}

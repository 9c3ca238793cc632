// Joining a cluster (simple form): a candidate asks a member; the member first gathers every other reachable
// voter's data (a majority is required), streams the union to the candidate in acknowledged batches, then
// proposes the next configuration with the candidate as a voter. One admission at a time.
import { isVoter, voterIds, withVoterAdded } from '../core/membership.js';
import { majority } from '../core/quorum.js';
import type { KeyedRecord, Message } from '../core/messages.js';
import { EMPTY_RECORD, mergeRecords } from '../core/record.js';
import type { StoragePort } from '../storage/port.js';
import { encodeRecord } from '../wire/record.js';
import type { Runtime, RuntimeLogger } from './runtime.js';

type JoinMessage = Extract<Message, { type: 'joinRequest' | 'joinReply' | 'transfer' | 'transferAck' | 'transferRequest' }>;

export function isJoinMessage(msg: Message): msg is JoinMessage {
  return (
    msg.type === 'joinRequest' ||
    msg.type === 'joinReply' ||
    msg.type === 'transfer' ||
    msg.type === 'transferAck' ||
    msg.type === 'transferRequest'
  );
}

export interface JoinOptions {
  readonly runtime: Runtime;
  readonly store: StoragePort;
  readonly send: (to: string, msg: Message) => boolean;
  readonly log: RuntimeLogger;
  readonly transferBatchRecords: number;
  readonly transferBatchBytes: number;
  readonly transferAckTimeoutMs: number;
  readonly opIdBase: number;
}

/** Progress of a data transfer, for /status. */
export interface TransferProgress {
  readonly peer: string;
  readonly role: 'sending' | 'receiving';
  keys: number;
  bytes: number;
  done: boolean;
}

export class JoinService {
  private readonly options: JoinOptions;
  private opIdNext: number;
  /** Member side: the candidate currently being admitted (one at a time). */
  private admitting: string | undefined;
  private readonly ackWaiters = new Map<number, () => void>();
  /** Candidate side: the member we asked, and the pending reply. */
  private joinWaiter:
    | { member: string; opId: number; resolve: (msg: Extract<Message, { type: 'joinReply' }>) => void; rearm: () => void }
    | undefined;
  transfer: TransferProgress | undefined;
  /** Member side: voters we asked for all their data while admitting someone; settled by their last batch. */
  private readonly pulls = new Map<string, { done: () => void; rearm: () => void }>();

  constructor(options: JoinOptions) {
    this.options = options;
    this.opIdNext = options.opIdBase + 1;
  }

  handle(from: string, msg: JoinMessage): void {
    switch (msg.type) {
      case 'joinRequest':
        void this.admit(from, msg.opId, msg.addrs).catch((error: unknown) => {
          this.options.log.warn({ peer: from, err: String(error) }, 'join request failed');
        });
        break;
      case 'transferAck':
        this.ackWaiters.get(msg.opId)?.();
        this.ackWaiters.delete(msg.opId);
        break;
      case 'transfer':
        this.receiveBatch(from, msg.opId, msg.records, msg.done);
        break;
      case 'transferRequest':
        if (!isVoter(this.options.runtime.config, from) || !this.options.runtime.isVoter()) {
          this.options.log.warn({ peer: from }, 'ignoring a data request from a device that is not a fellow voter');
          break;
        }
        void this.sendAll(from, false).catch((error: unknown) => {
          this.options.log.warn({ peer: from, err: String(error) }, 'serving a data request failed');
        });
        break;
      case 'joinReply':
        if (this.joinWaiter !== undefined && this.joinWaiter.member === from && this.joinWaiter.opId === msg.opId) {
          this.joinWaiter.resolve(msg);
          this.joinWaiter = undefined;
        }
        break;
    }
  }

  /**
   * Candidate side: asks `member` (already connected) to add us as a voter, with our dialable `addrs`.
   * Resolves on success (the configuration is adopted); rejects with the member's reason or on timeout.
   */
  async requestJoin(member: string, addrs: readonly string[], timeoutMs: number): Promise<void> {
    const opId = this.allocateOpId();
    const reply = new Promise<Extract<Message, { type: 'joinReply' }>>((resolve, reject) => {
      const expire = (): void => {
        this.joinWaiter = undefined;
        reject(new Error(`no word from ${member} about the join for ${timeoutMs} ms`));
      };
      let timer = setTimeout(expire, timeoutMs);
      this.joinWaiter = {
        member,
        opId,
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
        // A long transfer is progress, not silence: every batch restarts the clock.
        rearm: () => {
          clearTimeout(timer);
          timer = setTimeout(expire, timeoutMs);
        },
      };
    });
    if (!this.options.send(member, { type: 'joinRequest', opId, epoch: 0, addrs: [...addrs] })) {
      this.joinWaiter = undefined;
      throw new Error(`not connected to ${member}`);
    }
    const msg = await reply;
    if (!msg.ok || msg.config === undefined) throw new Error(msg.error || 'join refused');
    this.options.runtime.adoptConfig(msg.config);
  }

  // ---------------------------------------------------------------- member side

  private async admit(candidate: string, requestOpId: number, addrs: readonly string[]): Promise<void> {
    const { runtime } = this.options;
    const reply = (ok: boolean, error: string): void => {
      const config = ok ? runtime.config : undefined;
      this.options.send(candidate, { type: 'joinReply', opId: requestOpId, epoch: runtime.config.epoch, ok, error, config });
    };
    if (runtime.config.epoch === 0 || !runtime.isVoter()) return reply(false, 'this device is not a voter');
    if (isVoter(runtime.config, candidate)) return reply(true, '');
    if (this.admitting !== undefined) return reply(false, 'another device is joining; retry shortly');
    this.admitting = candidate;
    try {
      this.options.log.info({ peer: candidate }, 'admitting a new voter: gathering data from the voters');
      await this.gather();
      this.options.log.info({ peer: candidate }, 'admitting a new voter: transferring data');
      await this.sendAll(candidate, true);
      const committed = await runtime.changeConfig(withVoterAdded(runtime.config, { peerId: candidate, addrs: [...addrs] }));
      this.options.log.info({ peer: candidate, epoch: committed.epoch }, 'new voter admitted');
      reply(true, '');
    } catch (error) {
      reply(false, error instanceof Error ? error.message : String(error));
      throw error;
    } finally {
      this.admitting = undefined;
    }
  }

  /**
   * Pulls every other voter's data into our store, so what we stream to a candidate holds every write a
   * majority acknowledged (not only the ones we happen to hold). Fails unless a majority (us included) answered.
   */
  private async gather(): Promise<void> {
    const { runtime } = this.options;
    const voters = voterIds(runtime.config);
    const others = voters.filter((p) => p !== runtime.self);
    const results = await Promise.allSettled(others.map((peer) => this.pullFrom(peer)));
    const gathered = 1 + results.filter((r) => r.status === 'fulfilled').length;
    const needed = majority(voters.length);
    if (gathered < needed) {
      throw new Error(`gathered data from ${gathered} of ${voters.length} voters; ${needed} are needed before admitting a voter`);
    }
  }

  private pullFrom(peer: string): Promise<void> {
    const timeoutMs = this.options.transferAckTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      const expire = (): void => {
        this.pulls.delete(peer);
        reject(new Error(`no data from ${peer} for ${timeoutMs} ms`));
      };
      let timer = setTimeout(expire, timeoutMs);
      this.pulls.set(peer, {
        done: () => {
          clearTimeout(timer);
          this.pulls.delete(peer);
          resolve();
        },
        rearm: () => {
          clearTimeout(timer);
          timer = setTimeout(expire, timeoutMs);
        },
      });
      const msg: Message = { type: 'transferRequest', opId: this.allocateOpId(), epoch: this.options.runtime.config.epoch };
      if (!this.options.send(peer, msg)) {
        clearTimeout(timer);
        this.pulls.delete(peer);
        reject(new Error(`not connected to ${peer}`));
      }
    });
  }

  /** Streams every record to `peer` in batches, one acknowledged batch at a time. */
  private async sendAll(peer: string, track: boolean): Promise<void> {
    const { store, transferBatchRecords, transferBatchBytes } = this.options;
    const progress: TransferProgress = { peer, role: 'sending', keys: 0, bytes: 0, done: false };
    if (track) this.transfer = progress;
    let after: string | undefined;
    for (;;) {
      const entries = store.scan(after, transferBatchRecords);
      const batch: KeyedRecord[] = [];
      let bytes = 0;
      for (const entry of entries) {
        const size = entry.key.length + encodeRecord(entry.record).length;
        if (batch.length > 0 && bytes + size > transferBatchBytes) break;
        batch.push({ key: entry.key, record: entry.record });
        bytes += size;
      }
      const done = batch.length === entries.length && entries.length < transferBatchRecords;
      await this.sendBatch(peer, batch, done);
      progress.keys += batch.length;
      progress.bytes += bytes;
      if (done) break;
      after = batch[batch.length - 1]?.key ?? after;
    }
    progress.done = true;
  }

  private sendBatch(peer: string, records: KeyedRecord[], done: boolean): Promise<void> {
    const opId = this.allocateOpId();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ackWaiters.delete(opId);
        reject(new Error(`transfer batch to ${peer} not acknowledged in time`));
      }, this.options.transferAckTimeoutMs);
      this.ackWaiters.set(opId, () => {
        clearTimeout(timer);
        resolve();
      });
      const epoch = this.options.runtime.config.epoch;
      if (!this.options.send(peer, { type: 'transfer', opId, epoch, records, done })) {
        clearTimeout(timer);
        this.ackWaiters.delete(opId);
        reject(new Error(`lost the connection to ${peer} during the transfer`));
      }
    });
  }

  // ---------------------------------------------------------------- candidate side

  private receiveBatch(from: string, opId: number, records: readonly KeyedRecord[], done: boolean): void {
    const pull = this.pulls.get(from);
    if (pull !== undefined) {
      pull.rearm();
      this.storeRecords(records).then(
        () => {
          this.options.send(from, { type: 'transferAck', opId, epoch: this.options.runtime.config.epoch });
          if (done) pull.done();
        },
        (error: unknown) => this.options.log.error({ err: String(error) }, 'storing gathered data failed'),
      );
      return;
    }
    if (this.joinWaiter === undefined || this.joinWaiter.member !== from) {
      this.options.log.warn({ peer: from }, 'ignoring a data transfer we did not ask for');
      return;
    }
    this.joinWaiter.rearm();
    if (this.transfer === undefined || this.transfer.peer !== from || this.transfer.role !== 'receiving') {
      this.transfer = { peer: from, role: 'receiving', keys: 0, bytes: 0, done: false };
    }
    const progress = this.transfer;
    for (const { key, record } of records) {
      progress.keys += 1;
      progress.bytes += key.length + record.siblings.reduce((n, s) => n + (s.value?.length ?? 0), 0);
    }
    this.storeRecords(records).then(
      () => {
        progress.done = done;
        this.options.send(from, { type: 'transferAck', opId, epoch: this.options.runtime.config.epoch });
      },
      (error: unknown) => this.options.log.error({ err: String(error) }, 'storing transferred data failed'),
    );
  }

  /** Merges transferred records into the store; resolves once durable. */
  private storeRecords(records: readonly KeyedRecord[]): Promise<unknown> {
    const { store } = this.options;
    return Promise.all(records.map(({ key, record }) => store.put(key, mergeRecords(store.get(key) ?? EMPTY_RECORD, record))));
  }

  private allocateOpId(): number {
    const opId = this.opIdNext;
    this.opIdNext += 1;
    return opId;
  }
}

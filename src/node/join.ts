// Joining a cluster (simple form): a candidate asks a member; the member streams it the existing data in
// acknowledged batches, then proposes the next configuration with the candidate as a voter. One at a time.
import { isVoter, withVoterAdded } from '../core/membership.js';
import type { KeyedRecord, Message } from '../core/messages.js';
import { EMPTY_RECORD, mergeRecords } from '../core/record.js';
import type { StoragePort } from '../storage/port.js';
import { encodeRecord } from '../wire/record.js';
import type { Runtime, RuntimeLogger } from './runtime.js';

type JoinMessage = Extract<Message, { type: 'joinRequest' | 'joinReply' | 'transfer' | 'transferAck' }>;

export function isJoinMessage(msg: Message): msg is JoinMessage {
  return msg.type === 'joinRequest' || msg.type === 'joinReply' || msg.type === 'transfer' || msg.type === 'transferAck';
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
      this.options.log.info({ peer: candidate }, 'admitting a new voter: transferring data');
      await this.sendAll(candidate);
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

  /** Streams every record to `peer` in batches, one acknowledged batch at a time. */
  private async sendAll(peer: string): Promise<void> {
    const { store, transferBatchRecords, transferBatchBytes } = this.options;
    const progress: TransferProgress = { peer, role: 'sending', keys: 0, bytes: 0, done: false };
    this.transfer = progress;
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
    if (this.joinWaiter === undefined || this.joinWaiter.member !== from) {
      this.options.log.warn({ peer: from }, 'ignoring a data transfer we did not ask for');
      return;
    }
    this.joinWaiter.rearm();
    const { store } = this.options;
    if (this.transfer === undefined || this.transfer.peer !== from || this.transfer.role !== 'receiving') {
      this.transfer = { peer: from, role: 'receiving', keys: 0, bytes: 0, done: false };
    }
    const progress = this.transfer;
    const writes: Array<Promise<void>> = [];
    for (const { key, record } of records) {
      writes.push(store.put(key, mergeRecords(store.get(key) ?? EMPTY_RECORD, record)));
      progress.keys += 1;
      progress.bytes += key.length + record.siblings.reduce((n, s) => n + (s.value?.length ?? 0), 0);
    }
    void Promise.all(writes).then(
      () => {
        progress.done = done;
        this.options.send(from, { type: 'transferAck', opId, epoch: this.options.runtime.config.epoch });
      },
      (error: unknown) => this.options.log.error({ err: String(error) }, 'storing transferred data failed'),
    );
  }

  private allocateOpId(): number {
    const opId = this.opIdNext;
    this.opIdNext += 1;
    return opId;
  }
}

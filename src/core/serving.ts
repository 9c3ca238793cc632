// The replica side: this device serving other members' writes, reads and read repairs (what it stores and
// answers, and whom it refuses: older epochs get our configuration, non-members nothing).
import type { Action, LocalView } from './actions.js';
import { isMember, isRemoved } from './membership.js';
import type { Message } from './messages.js';
import type { ReplicaHost } from './ops.js';
import { EMPTY_RECORD, holdsSibling, mergeRecords, recordsEqual } from './record.js';
import { type Dot, dotEqual } from './vv.js';

/** Answers replica requests; keeps no state of its own (everything it needs is the host's). */
export class Serving {
  private readonly self: string;

  constructor(private readonly host: ReplicaHost) {
    this.self = host.self;
  }

  onWrite(from: string, msg: Extract<Message, { type: 'write' }>, local: LocalView): Action[] {
    const refusal = this.refuse(from, msg.opId, msg.epoch);
    if (refusal !== undefined) return refusal;
    // An ack says "this seat's store holds it": a device without its seat stores and acks nothing.
    if (!this.host.seated()) return [];
    this.host.observe(msg.record);
    const merged = mergeRecords(local.get(msg.key) ?? EMPTY_RECORD, msg.record);
    const ack: Message = { type: 'writeAck', opId: msg.opId, epoch: this.host.epoch() };
    // An ack says "this store holds the write": the write's own sibling, not a record that merely covers its dot.
    // A member may forge a record covering another writer's dots far ahead (only the writer knows what it
    // issued); a replica holding one would take that writer's next writes for superseded, drop them and, with an
    // ack, lose them while the writer counts them durable. So no ack unless the sibling itself is held; the rare
    // honest case (a successor written after this write was read elsewhere arrived here first) only leaves this
    // replica out of the write's count.
    const sibling = msg.dot === undefined ? undefined : msg.record.siblings.find((s) => dotEqual(s.dot, msg.dot as Dot));
    const held = msg.dot === undefined || (sibling !== undefined && holdsSibling(merged, sibling));
    return [{ type: 'persist', key: msg.key, record: merged, then: held ? { to: from, msg: ack } : undefined }];
  }

  onRead(from: string, msg: Extract<Message, { type: 'read' }>, local: LocalView): Action[] {
    // From a newer epoch: we may not hold that epoch's seat (an old store under a seat given to another
    // store). Answer nothing for it; our reply's older epoch makes the reader tell us the configuration.
    const behind = msg.epoch > this.host.epoch() && !isRemoved(this.host.config(), from);
    const refusal = behind ? undefined : this.refuse(from, msg.opId, msg.epoch);
    if (refusal !== undefined) return refusal;
    if (behind || !this.host.seated()) {
      // A device whose store is not its seat's (wiped, re-flashed) could hide an acknowledged write.
      const unavailable: Message = { type: 'readReply', opId: msg.opId, epoch: this.host.epoch(), key: msg.key, record: undefined, unavailable: true };
      return [{ type: 'send', to: from, msg: unavailable }];
    }
    const reply: Message = { type: 'readReply', opId: msg.opId, epoch: this.host.epoch(), key: msg.key, record: local.get(msg.key) };
    // What we hold may include writes still staged: answer once they are durable, or a crash could undo what
    // the reader was shown (and a quorum read would count a copy we then no longer have).
    return [{ type: 'flush', then: { to: from, msg: reply } }];
  }

  onRepair(from: string, msg: Extract<Message, { type: 'repair' }>, local: LocalView): Action[] {
    if (!this.acceptsDataFrom(from, msg.epoch) || !this.host.seated()) return [];
    this.host.observe(msg.record);
    const current = local.get(msg.key) ?? EMPTY_RECORD;
    const merged = mergeRecords(current, msg.record);
    if (recordsEqual(merged, current)) return [];
    return [{ type: 'persist', key: msg.key, record: merged, then: undefined }];
  }

  /** Refuses a request from an older epoch (with our configuration) or from a non-member; else undefined. */
  refuse(from: string, opId: number, epoch: number): Action[] | undefined {
    if (this.host.epoch() > 0 && epoch < this.host.epoch()) {
      const { config, chain } = this.host.configFor(epoch);
      return [{ type: 'send', to: from, msg: { type: 'stale', opId, epoch: this.host.epoch(), config, ...(chain === undefined ? {} : { chain }) } }];
    }
    if (!this.acceptsDataFrom(from, epoch)) return [];
    return undefined;
  }

  /**
   * Data (writes, repairs, pushes) is taken only from a member speaking from our own epoch. From an older one it
   * could be an old store under a re-seated peer ID bringing back what was deleted since (the sender is told
   * our configuration); from a newer one our seat may be another store's by then (we wait until we adopted it:
   * the sender tells us, see tellIfStale).
   */
  acceptsDataFrom(from: string, epoch: number): boolean {
    if (from === this.self) return true;
    if (this.host.epoch() === 0 || epoch !== this.host.epoch() || isRemoved(this.host.config(), from)) return false;
    return isMember(this.host.config(), from) || this.host.config().previousVoters.includes(from);
  }
}

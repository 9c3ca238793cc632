// The configuration change, both sides of single-decree Paxos per epoch: the proposer (proposeConfig: prepare,
// accept, commit with the accept signatures as proof) and the acceptor (promises and accepts, kept durably).
import type { Action, ClientResult, FailureCode, LocalView } from './actions.js';
import { type ConfigAuth, acceptPayload, reseatClaimProblem } from './config-proof.js';
import { MembershipChangeError } from './errors.js';
import { type ConfigSignature, type MembershipConfig, configQuorum, configsEqual, goneAcceptor, isVoter, replicaIds, voterIds } from './membership.js';
import type { Message } from './messages.js';
import type { ConfigOp, Op, ReplicaHost } from './ops.js';
import {
  type AcceptorState,
  type Ballot,
  accept as acceptorAccept,
  ballotCompare,
  highestAccepted,
  prepare as acceptorPrepare,
} from './paxos.js';
import { majority } from './quorum.js';

/** Slots whose proposer is remembered (proposerOf): the current joint phase is all that matters. */
const PROPOSERS_REMEMBERED = 8;

/** Proposes and decides membership changes; owns the acceptor state, the ballots seen and recent proposers. */
export class ConfigChange {
  private readonly self: string;
  private readonly ops: Map<number, Op>;
  /** Highest ballot round seen anywhere, so our next proposal outbids it. */
  private roundSeen = 0;
  /** The proposer whose accept this replica took for each recent slot (see proposerOf()). */
  readonly proposers = new Map<number, string>();

  constructor(
    private readonly host: ReplicaHost,
    /** This replica's acceptor (persisted by the runtime on every change: persistAcceptor). */
    public acceptor: AcceptorState,
    /** Deadline for a membership decision (two round trips and two durable writes). */
    private readonly membershipTimeoutMs: number,
    readonly auth: ConfigAuth | undefined,
  ) {
    this.self = host.self;
    this.ops = host.ops;
    this.roundSeen = this.acceptor.promised.round;
  }

  rememberProposer(epoch: number, peer: string): void {
    this.proposers.set(epoch, peer);
    if (this.proposers.size > PROPOSERS_REMEMBERED) this.proposers.delete(this.proposers.keys().next().value as number);
  }

  /**
   * The proposer whose value this acceptor last accepted for the configuration of `epoch` (usually the device
   * that committed it and now runs its data sync), or else the first device that announced it to us.
   */
  proposerOf(epoch: number): string | undefined {
    return this.proposers.get(epoch);
  }

  /**
   * Proposes `proposed` as the configuration of the next epoch (current + 1): single-decree Paxos among the
   * current voters. Resolves with configCommitted, or `membership_conflict` when another value won the epoch
   * (the caller re-derives its change from the new configuration and retries). One change at a time here.
   */
  proposeConfig(proposed: MembershipConfig, nowMs: number, local: LocalView): { opId: number; actions: Action[] } {
    this.host.assertMember();
    const base = this.host.config();
    // A proposer's own acceptor records its ballot durably first, so a restart never reuses a ballot.
    if (!isVoter(base, this.self)) throw new MembershipChangeError('only a voter can propose a membership change');
    if (proposed.epoch !== base.epoch + 1 || proposed.clusterId !== base.clusterId) {
      throw new MembershipChangeError(`proposal for epoch ${proposed.epoch} does not follow epoch ${base.epoch}`);
    }
    for (const op of this.ops.values()) {
      if (op.kind === 'config') throw new MembershipChangeError('another membership change is in flight here');
    }
    this.roundSeen += 1;
    const ballot: Ballot = { round: this.roundSeen, proposer: this.self };
    const opId = this.host.allocateOpId();
    const op: ConfigOp = {
      kind: 'config',
      base,
      proposed,
      ballot,
      phase: 'prepare',
      value: undefined,
      promises: new Map(),
      accepted: new Map(),
      refused: new Set(),
      gone: goneAcceptor(base, proposed),
      deadlineMs: nowMs + this.membershipTimeoutMs,
    };
    this.ops.set(opId, op);
    const actions: Action[] = [];
    const msg: Message = { type: 'configPrepare', opId, epoch: base.epoch, ballot, config: base };
    for (const peer of voterIds(base)) if (peer !== op.gone) this.host.deliverTo(peer, msg, actions, local, nowMs);
    return { opId, actions };
  }

  // ---------------------------------------------------------------- acceptor side (membership decisions)

  onPrepare(from: string, msg: Extract<Message, { type: 'configPrepare' }>, local: LocalView, nowMs: number): Action[] {
    const actions: Action[] = [];
    const refuse = (promised: Ballot | undefined, config: MembershipConfig | undefined): void => {
      const reply: Message = { type: 'configPromise', opId: msg.opId, epoch: this.host.epoch(), ballot: msg.ballot, ok: false, accepted: undefined, promised, config };
      this.host.deliverTo(from, reply, actions, local, nowMs);
    };
    if (this.host.epoch() > msg.epoch) {
      refuse(undefined, this.host.config());
      return actions;
    }
    // The proposer's base is committed: catch up to it before voting on its successor.
    if (this.host.epoch() < msg.epoch) actions.push(...this.host.maybeAdopt(msg.config, local, nowMs));
    if (this.host.epoch() !== msg.epoch || !isVoter(this.host.config(), this.self) || !isVoter(this.host.config(), from)) return actions;
    // A voter seat held by another store: this device lost the promises its seat made. It never votes.
    if (!this.host.seated()) {
      refuse(undefined, undefined);
      return actions;
    }
    this.noteRound(msg.ballot);
    const out = acceptorPrepare(this.acceptor, msg.ballot);
    if (!out.ok) {
      refuse(out.promised, undefined);
      return actions;
    }
    this.acceptor = out.state;
    const reply: Message = { type: 'configPromise', opId: msg.opId, epoch: this.host.epoch(), ballot: msg.ballot, ok: true, accepted: out.accepted, promised: undefined, config: undefined };
    actions.push({ type: 'persistAcceptor', state: out.state, then: { to: from, msg: reply } });
    return actions;
  }

  onAccept(from: string, msg: Extract<Message, { type: 'configAccept' }>, local: LocalView, nowMs: number): Action[] {
    const actions: Action[] = [];
    const refuse = (promised: Ballot | undefined, config: MembershipConfig | undefined): void => {
      const reply: Message = { type: 'configAccepted', opId: msg.opId, epoch: this.host.epoch(), ballot: msg.ballot, ok: false, promised, config };
      this.host.deliverTo(from, reply, actions, local, nowMs);
    };
    if (this.host.epoch() > msg.epoch) {
      refuse(undefined, this.host.config());
      return actions;
    }
    // A re-seat's smaller quorum decides only the re-seated device's own request (its claim): an acceptor that
    // accepted anything else would help decide a value no device can adopt (config-proof.ts reseatClaimProblem).
    const valid =
      msg.config.epoch === msg.epoch + 1 &&
      msg.config.clusterId === this.host.config().clusterId &&
      (this.auth === undefined || this.host.epoch() !== msg.epoch || reseatClaimProblem(this.host.config(), msg.config, this.auth) === undefined);
    if (this.host.epoch() < msg.epoch || !valid || !this.host.seated() || !isVoter(this.host.config(), this.self) || !isVoter(this.host.config(), from)) {
      refuse(undefined, undefined);
      return actions;
    }
    this.noteRound(msg.ballot);
    const out = acceptorAccept(this.acceptor, msg.ballot, msg.config);
    if (!out.ok) {
      refuse(out.promised, undefined);
      return actions;
    }
    this.acceptor = out.state;
    this.rememberProposer(msg.config.epoch, from);
    // The signature is the proof, for any device, that this acceptor accepted this value at this ballot.
    const signature = this.auth?.sign(acceptPayload(msg.config, msg.ballot));
    const reply: Message = { type: 'configAccepted', opId: msg.opId, epoch: this.host.epoch(), ballot: msg.ballot, ok: true, promised: undefined, config: undefined, signature };
    actions.push({ type: 'persistAcceptor', state: out.state, then: { to: from, msg: reply } });
    return actions;
  }

  // ---------------------------------------------------------------- proposer side

  onPromise(from: string, msg: Extract<Message, { type: 'configPromise' }>, local: LocalView, nowMs: number): Action[] {
    const op = this.ops.get(msg.opId);
    if (op === undefined || op.kind !== 'config' || op.phase !== 'prepare' || ballotCompare(op.ballot, msg.ballot) !== 0) return [];
    if (!isVoter(op.base, from) || op.promises.has(from) || op.refused.has(from)) return [];
    const actions: Action[] = [];
    if (msg.ok) {
      if (msg.accepted !== undefined && msg.accepted.config.epoch !== op.base.epoch + 1) return [];
      op.promises.set(from, msg.accepted);
    } else {
      this.noteRefusal(op, from, msg.promised, msg.config, local, nowMs, actions);
      if (!this.ops.has(msg.opId)) return actions;
    }
    this.progressConfig(msg.opId, op, local, nowMs, actions);
    return actions;
  }

  onAccepted(from: string, msg: Extract<Message, { type: 'configAccepted' }>, local: LocalView, nowMs: number): Action[] {
    const op = this.ops.get(msg.opId);
    if (op === undefined || op.kind !== 'config' || op.phase !== 'accept' || ballotCompare(op.ballot, msg.ballot) !== 0) return [];
    if (!isVoter(op.base, from) || op.accepted.has(from) || op.refused.has(from)) return [];
    const actions: Action[] = [];
    if (msg.ok) {
      // Its signature goes into the decided value's proof: an accept without a valid one is not counted (a
      // proof short of a quorum would be refused by every device that checks it).
      if (this.auth !== undefined && op.value !== undefined) {
        const signature = msg.signature;
        if (signature === undefined || !this.auth.verify(from, acceptPayload(op.value, op.ballot), signature)) return [];
      }
      op.accepted.set(from, msg.signature);
    } else {
      this.noteRefusal(op, from, msg.promised, msg.config, local, nowMs, actions);
      if (!this.ops.has(msg.opId)) return actions;
    }
    this.progressConfig(msg.opId, op, local, nowMs, actions);
    return actions;
  }

  private noteRefusal(
    op: ConfigOp,
    from: string,
    promised: Ballot | undefined,
    config: MembershipConfig | undefined,
    local: LocalView,
    nowMs: number,
    actions: Action[],
  ): void {
    op.refused.add(from);
    if (promised !== undefined) this.noteRound(promised);
    // A newer committed configuration fails this proposal (through maybeAdopt) as a conflict.
    if (config !== undefined && config.epoch > this.host.epoch()) actions.push(...this.host.maybeAdopt(config, local, nowMs));
  }

  progressConfig(opId: number, op: ConfigOp, local: LocalView, nowMs: number, actions: Action[]): void {
    const { acceptors, needed } = configQuorum(op.base, op.gone);
    if (acceptors - op.refused.size < needed) {
      this.ops.delete(opId);
      const conflict = op.refused.size > 0;
      actions.push({ type: 'reply', result: this.failure(opId, op, conflict ? 'membership_conflict' : undefined) });
      return;
    }
    if (op.phase === 'prepare' && op.promises.size >= needed) {
      // Paxos: if any acceptor in this majority accepted a value, the highest-ballot one may already be chosen.
      op.value = highestAccepted(op.promises.values())?.config ?? op.proposed;
      // The quorum phase 2 needs is the one the value's proof is checked with: a recovered value that is no
      // re-seat needs a majority of all the voters even when our own proposal was one (else its proof falls
      // short, every device refuses it, and the slot stays decided-but-unlearnable for good).
      op.gone = goneAcceptor(op.base, op.value);
      op.phase = 'accept';
      const msg: Message = { type: 'configAccept', opId, epoch: op.base.epoch, ballot: op.ballot, config: op.value };
      for (const peer of voterIds(op.base)) if (peer !== op.gone) this.host.deliverTo(peer, msg, actions, local, nowMs);
      return;
    }
    if (op.phase === 'accept' && op.accepted.size >= needed && op.value !== undefined) {
      const value = this.withProof(op.value, op);
      this.ops.delete(opId);
      actions.push(...this.host.maybeAdopt(value, local, nowMs));
      // Tell every device of both configurations (and a removed one, so it knows), not only the acceptors.
      const told = new Set([...replicaIds(op.base), ...replicaIds(value), ...value.removed.filter((p) => !op.base.removed.includes(p))]);
      told.delete(this.self);
      for (const peer of told) actions.push({ type: 'send', to: peer, msg: { type: 'config', epoch: value.epoch, config: value } });
      if (configsEqual(value, op.proposed)) {
        actions.push({ type: 'reply', result: { type: 'configCommitted', opId, config: value } });
      } else {
        actions.push({ type: 'reply', result: this.failure(opId, op, 'membership_conflict') });
      }
    }
  }

  /** The decided value with the accept signatures collected for it: its proof. */
  private withProof(value: MembershipConfig, op: ConfigOp): MembershipConfig {
    if (this.auth === undefined) return value;
    const signatures: ConfigSignature[] = [];
    for (const [peerId, signature] of op.accepted) if (signature !== undefined) signatures.push({ peerId, signature });
    return { ...value, proof: { ballot: op.ballot, signatures } };
  }

  private noteRound(ballot: Ballot): void {
    if (ballot.round > this.roundSeen) this.roundSeen = ballot.round;
  }

  /** Our configuration moved on: a change from an older base is over (committed if its value won, else a conflict). */
  retarget(opId: number, op: ConfigOp, config: MembershipConfig, actions: Action[]): void {
    if (config.epoch > op.base.epoch) {
      this.ops.delete(opId);
      const won = op.value !== undefined && configsEqual(config, op.proposed);
      if (won && config.epoch === op.base.epoch + 1) {
        actions.push({ type: 'reply', result: { type: 'configCommitted', opId, config } });
      } else {
        actions.push({ type: 'reply', result: this.failure(opId, op, 'membership_conflict') });
      }
    }
  }

  /** The failure a membership change reports (a conflict: another value won the epoch). */
  failure(opId: number, op: ConfigOp, code?: FailureCode): ClientResult {
    const conflict = code === 'membership_conflict';
    return {
      type: 'failed',
      opId,
      code: conflict ? 'membership_conflict' : 'membership_change_failed',
      message: conflict
        ? `another membership change won epoch ${op.base.epoch + 1}; retry from epoch ${this.host.epoch()}`
        : `membership change to epoch ${op.proposed.epoch} was not accepted by a majority of the ${op.base.voters.length} voters in time`,
      acks: op.phase === 'prepare' ? op.promises.size : op.accepted.size,
      required: majority(op.base.voters.length),
      voters: op.base.voters.length,
    };
  }
}

// Byte budgets for inbound frames being assembled: one per connection and one per node, shared by every frame
// stream (replica and sync) of that connection or node. A frame that would take a budget over its limit resets
// its stream (FrameBudgetError) instead of growing memory: what a peer can make us hold is bounded by bytes it
// actually sent, per connection and in total, whatever it announces in length prefixes.
import type { Connection, Libp2p } from '@libp2p/interface';
import { assert } from '../core/assert.js';
import { FRAME_BUFFER_BYTES_PER_CONNECTION_MAX, FRAME_BUFFER_BYTES_PER_NODE_MAX } from './constants.js';

/** A counter of bytes held against a limit. Reservations are all-or-nothing; releases never go below zero. */
export class ByteBudget {
  readonly name: string;
  readonly limitBytes: number;
  private used = 0;

  constructor(name: string, limitBytes: number) {
    assert(Number.isSafeInteger(limitBytes) && limitBytes > 0, 'a byte budget has a positive limit');
    this.name = name;
    this.limitBytes = limitBytes;
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Takes `bytes` if they fit; false (and nothing taken) otherwise. */
  tryReserve(bytes: number): boolean {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, 'a reservation is a non-negative integer');
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    assert(Number.isSafeInteger(bytes) && bytes >= 0 && bytes <= this.used, 'a release returns bytes that were reserved');
    this.used -= bytes;
  }
}

/** Reserves `bytes` in every budget or in none: returns the budget that refused, if any. */
export function reserveAll(budgets: readonly ByteBudget[], bytes: number): ByteBudget | undefined {
  for (let i = 0; i < budgets.length; i++) {
    const budget = budgets[i] as ByteBudget;
    if (!budget.tryReserve(bytes)) {
      for (let j = 0; j < i; j++) (budgets[j] as ByteBudget).release(bytes);
      return budget;
    }
  }
  return undefined;
}

interface NodeBudgets {
  readonly node: ByteBudget;
  readonly connections: WeakMap<Connection, ByteBudget>;
}

const byNode = new WeakMap<Libp2p, NodeBudgets>();

/** The budgets a frame stream on `connection` of `node` charges: its connection's, then the node's. */
export function frameBudgets(node: Libp2p, connection: Connection): readonly ByteBudget[] {
  let budgets = byNode.get(node);
  if (budgets === undefined) {
    budgets = { node: new ByteBudget('node', FRAME_BUFFER_BYTES_PER_NODE_MAX), connections: new WeakMap() };
    byNode.set(node, budgets);
  }
  let perConnection = budgets.connections.get(connection);
  if (perConnection === undefined) {
    perConnection = new ByteBudget('connection', FRAME_BUFFER_BYTES_PER_CONNECTION_MAX);
    budgets.connections.set(connection, perConnection);
  }
  return [perConnection, budgets.node];
}

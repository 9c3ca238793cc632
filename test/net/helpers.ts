// Test helpers for the net layer: loopback nodes with fresh identities, a transport that records what it
// receives, and a registry that stops every node and transport a test started.
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { Message } from '../../src/core/messages.js';
import { createNetNode, type NetNode } from '../../src/net/node.js';
import { ReplicaTransport, type ReplicaTransportOptions } from '../../src/net/transport.js';

export interface Received {
  readonly from: string;
  readonly msg: Message;
}

export interface TestPeer {
  readonly node: NetNode;
  readonly transport: ReplicaTransport;
  readonly peerId: string;
  readonly addr: string;
  readonly received: Received[];
  readonly connects: string[];
  readonly disconnects: string[];
  readonly logs: Array<{ obj: object; msg: string }>;
  readonly nodeLogs: Array<{ obj: object; msg: string }>;
}

export class Cleanup {
  private readonly tasks: Array<() => Promise<void>> = [];

  add(task: () => Promise<void>): void {
    this.tasks.push(task);
  }

  async run(): Promise<void> {
    const tasks = this.tasks.splice(0).reverse();
    const results = await Promise.allSettled(tasks.map((t) => t()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }
}

export interface PeerOptions {
  readonly dialTimeoutMs?: number;
  readonly denyPeer?: (peerId: string) => boolean;
  readonly transport?: Partial<ReplicaTransportOptions>;
  /** The node's own log sink (handshake refusals); its lines also go to TestPeer.nodeLogs. */
  readonly nodeLog?: boolean;
}

export async function startPeer(cleanup: Cleanup, clusterKey: Uint8Array, options: PeerOptions = {}): Promise<TestPeer> {
  const nodeLogs: Array<{ obj: object; msg: string }> = [];
  const node = await createNetNode({
    log: options.nodeLog === true ? (obj, msg) => nodeLogs.push({ obj, msg }) : undefined,
    privateKey: await generateKeyPair('Ed25519'),
    clusterKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dialTimeoutMs: options.dialTimeoutMs,
    denyPeer: options.denyPeer,
  });
  cleanup.add(async () => {
    await node.stop();
  });
  const received: Received[] = [];
  const connects: string[] = [];
  const disconnects: string[] = [];
  const logs: Array<{ obj: object; msg: string }> = [];
  const transport = new ReplicaTransport(node, {
    onMessage: (from, msg) => received.push({ from, msg }),
    onPeerConnect: (peer) => connects.push(peer),
    onPeerDisconnect: (peer) => disconnects.push(peer),
    log: (obj, msg) => logs.push({ obj, msg }),
    ...options.transport,
  });
  await transport.start();
  cleanup.add(() => transport.stop());
  const addr = transport.listenAddrs().find((a) => a.includes('/ip4/127.0.0.1/'));
  if (addr === undefined) throw new Error('node has no loopback address');
  return { node, transport, peerId: node.peerId.toString(), addr, received, connects, disconnects, logs, nodeLogs };
}

/** Polls `condition` every few ms until true or the deadline passes. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function ack(opId: number, epoch = 1): Message {
  return { type: 'writeAck', opId, epoch };
}

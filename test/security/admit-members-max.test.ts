// How many members an admission may make. While the cluster has never removed a device, every key holder is
// admitted automatically (docs/security.md, "Admission and revocation"), one learner per identity, without a
// bound: the 1,025th learner made a configuration the wire refuses to decode (CONFIG_MEMBERS_MAX per list), so
// every device told of it reset the stream it came on and the members could no longer agree on their
// membership. A key holder minting identities gets there in minutes. The admission must be refused instead.
import { describe, expect, it } from 'vitest';
import type { MembershipConfig } from '../../src/core/membership.js';
import type { Message } from '../../src/core/messages.js';
import { MembershipService } from '../../src/node/membership.js';
import { CONFIG_MEMBERS_MAX, decodeFrame, encodeFrame } from '../../src/wire/replica.js';
import { silentLog, testRuntime } from '../helpers/runtime.js';

describe('an admission into a full configuration', () => {
  it('is refused, and the configuration stays one every device can decode', async () => {
    // 1. One voter and as many learners as a configuration may list; no device was ever removed (genesis).
    const full: MembershipConfig = {
      clusterId: 'c',
      epoch: 3,
      voters: [{ peerId: 'A', addrs: [], store: 'store-A' }],
      learners: Array.from({ length: CONFIG_MEMBERS_MAX }, (_, i) => ({ peerId: `L${i}`, addrs: [], store: `store-L${i}` })),
      removed: [],
      previousVoters: [],
    };
    const { runtime } = await testRuntime('A', { config: full });
    runtime.attachTransport({ send: () => true, isConnected: () => true });
    const sent: Array<{ to: string; msg: Message }> = [];
    const membership = new MembershipService({
      runtime,
      storeId: 'store-A',
      send: (to, msg) => (sent.push({ to, msg }), true),
      log: silentLog,
      autoAdmit: true,
      maxVoters: 1,
      jointTakeoverMs: 60_000,
      changeAttemptsMax: 3,
      addrsOf: () => [],
      isAlive: () => true,
      opIdBase: 1_000,
    });
    // 2. One more key holder asks to join.
    membership.handle('NEW', { type: 'joinRequest', opId: 5, epoch: 0, addrs: ['/ip4/127.0.0.1/tcp/9'], store: 'store-NEW' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // 3. It is told no, and the configuration still decodes.
    const config = runtime.config;
    expect(() => decodeFrame(encodeFrame([{ type: 'config', epoch: config.epoch, config }]))).not.toThrow();
    expect(config.epoch).toBe(3);
    expect(sent.filter((s) => s.msg.type === 'joinReply')).toEqual([{ to: 'NEW', msg: expect.objectContaining({ ok: false }) }]);
    membership.stop();
    runtime.stop();
  });
});

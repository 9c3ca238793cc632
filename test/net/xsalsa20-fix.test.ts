// The pnet cipher's shared WASM memory: without the fix, one frame over 640 KiB made every later message on any
// other connection grow the memory again, until `Maximum memory size exceeded` (see src/net/xsalsa20-fix.ts).
import { spawnSync } from 'node:child_process';
import XSalsa20 from 'xsalsa20';
import { describe, expect, it } from 'vitest';
import { installXsalsa20Fix } from '../../src/net/xsalsa20-fix.js';

const SCENARIO = `
import XSalsa20 from 'xsalsa20';
const key = new Uint8Array(32).fill(7), nonce = new Uint8Array(24).fill(3);
const ciphers = [0, 1, 2, 3].map(() => new XSalsa20(nonce, key));
ciphers[0].update(new Uint8Array(1_000_000));
for (let i = 0; i < 3000; i++) ciphers[i % 4].update(new Uint8Array(100));
console.log('survived');
`;

describe('xsalsa20 (pnet cipher) memory fix', () => {
  it('the unpatched library dies after one large frame and some small ones (the bug is real)', () => {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', SCENARIO], { encoding: 'utf8', timeout: 30_000 });
    expect(run.stdout).not.toContain('survived');
    expect(run.stderr).toContain('Maximum memory size exceeded');
  });

  it('patched, large and small updates on many ciphers keep the memory bounded and the stream correct', () => {
    expect(installXsalsa20Fix()).toBe(true);
    const key = new Uint8Array(32).fill(7);
    const nonce = new Uint8Array(24).fill(3);
    const senders = [0, 1, 2, 3].map(() => new XSalsa20(nonce, key));
    const receivers = [0, 1, 2, 3].map(() => new XSalsa20(nonce, key));
    for (let i = 0; i < 4000; i++) {
      const j = i % 4;
      const size = i % 97 === 0 ? 1_500_000 : 100 + (i % 300);
      const plain = new Uint8Array(size).map((_, k) => (k * 31 + i) & 255);
      const back = receivers[j]!.update(senders[j]!.update(plain));
      expect(Buffer.compare(Buffer.from(back), Buffer.from(plain))).toBe(0);
    }
    const live = senders.map((s) => (s as unknown as { _xor: { _memory: Uint8Array } })._xor._memory.byteLength).filter((n) => n > 0);
    expect(Math.max(...live)).toBeLessThan(8 * 1024 * 1024);
  });
});

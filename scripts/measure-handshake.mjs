// Connection setup time, memory and wrong-key refusal of three connection handshakes, in-process on loopback:
// `pnet` (@libp2p/pnet + Noise, as shipped before), `pnet-fixed` (the same, both xsalsa20 ciphers finalized when the
// connection closes) and `noise` (Noise with a prologue derived from the key, as src/net/handshake.ts does).
// Usage: node --expose-gc scripts/measure-handshake.mjs <pnet|pnet-fixed|noise> [connections=1000]
// xsalsaHeadGrowthBytes: WASM memory the xsalsa20 library kept (both ends run in this process: 4 ciphers per connection).


Promise.withResolvers ??= () => { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; };
const imp = (m) => import(m);
const { createLibp2p } = await imp('libp2p');
const { tcp } = await imp('@libp2p/tcp');
const { noise } = await imp('@chainsafe/libp2p-noise');
const { yamux } = await imp('@chainsafe/libp2p-yamux');
const { preSharedKey, generateKey } = await imp('@libp2p/pnet');
const { default: XSalsa20 } = await imp('xsalsa20');
const { createHash } = await import('node:crypto');

const mode = process.argv[2];
const N = Number(process.argv[3] ?? 1000);
const key = new Uint8Array(95); generateKey(key);
const other = new Uint8Array(95); generateKey(other);

function finalizing(psk) {
  const make = preSharedKey({ psk });
  return (components) => {
    const inner = make(components);
    return { [Symbol.toStringTag]: 'x', async protect(c, o) { const s = await inner.protect(c, o); s.addEventListener('close', () => { s.inboundXor.finalize(); s.outboundXor.finalize(); s.inboundXor = s.outboundXor = { update: () => new Uint8Array(0) }; }, { once: true }); return s; } };
  };
}
function cfg(k) {
  if (mode === 'noise') return { connectionEncrypters: [noise({ prologueBytes: createHash('sha256').update('p').update(k).digest() })] };
  return { connectionProtector: mode === 'pnet-fixed' ? finalizing(k) : preSharedKey({ psk: k }), connectionEncrypters: [noise()] };
}
async function node(k) {
  return createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], streamMuxers: [yamux()], connectionMonitor: { enabled: false }, connectionManager: { inboundConnectionThreshold: 1e9, maxConnections: 1e6 },
    ...cfg(k) });
}
const a = await node(key), b = await node(key), c = await node(other);
const probe = () => { const x = new XSalsa20(new Uint8Array(24), new Uint8Array(32)); const p = x._xor._pointer; const m = x._xor._memory.byteLength; x.finalize(); return { pointer: p, wasmBytes: m }; };
const addr = b.getMultiaddrs()[0];
for (let i = 0; i < 50; i++) { const conn = await a.dial(addr); await conn.close(); }
globalThis.gc?.();
const before = { ...probe(), heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };
const t0 = performance.now();
const times = [];
for (let i = 0; i < N; i++) { const s = performance.now(); const conn = await a.dial(addr); times.push(performance.now() - s); await conn.close(); }
const elapsed = performance.now() - t0;
await new Promise((r) => setTimeout(r, 500));
globalThis.gc?.();
const after = { ...probe(), heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };
times.sort((x, y) => x - y);
const wrong = [];
for (let i = 0; i < 40; i++) { const s = performance.now(); try { await c.dial(addr, { signal: AbortSignal.timeout(10000) }); wrong.push('connected!'); } catch (e) { wrong.push(performance.now() - s); if (i === 0) console.log('wrong-key error:', e.name, e.message.slice(0, 200)); } }
wrong.sort((x, y) => x - y);
console.log(JSON.stringify({ mode, N, setupMsMedian: times[N >> 1].toFixed(2), setupMsP95: times[Math.floor(N * 0.95)].toFixed(2), connPerSec: (N / elapsed * 1000).toFixed(0),
  xsalsaHeadGrowthBytes: after.pointer - before.pointer, wasmBytes: after.wasmBytes, heapGrowthKiB: ((after.heap - before.heap) / 1024).toFixed(0), rssGrowthKiB: ((after.rss - before.rss) / 1024).toFixed(0),
  wrongKeyMsMedian: Number(wrong[20]).toFixed(1), wrongKeyMsP90: Number(wrong[36]).toFixed(1), wrongKeyOver1s: wrong.filter((ms) => !(ms < 1000)).length + '/40' }));
await Promise.all([a.stop(), b.stop(), c.stop()]);

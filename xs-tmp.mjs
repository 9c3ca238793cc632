import XSalsa20 from 'xsalsa20';
if (process.argv[2] === 'fix') { const m = await import('/work/main/dist/net/xsalsa20-fix.js'); m.installXsalsa20Fix(); }
const key = new Uint8Array(32).fill(7), nonce = new Uint8Array(24).fill(3);
const inst = [0,1,2,3].map(() => new XSalsa20(nonce, key));
const sizes = () => inst.map((x) => x._xor._memory.length);
inst[0].update(new Uint8Array(1000000));
console.log('after 1 MB on 0', sizes());
inst[1].update(new Uint8Array(100));
console.log('after small on 1', sizes());
const t = performance.now();
for (let i = 0; i < 2000; i++) inst[i % 4].update(new Uint8Array(100));
console.log('after 2000 small', sizes(), Math.round(performance.now() - t), 'ms');

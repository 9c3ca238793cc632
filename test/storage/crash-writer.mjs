// Child process of crash.test.ts: writes unique keys and an increasing meta counter under load through the
// COMPILED SqliteStore (dist/, built by `npm run build`) and prints each write as soon as it is acknowledged, until killed.
// Usage: node crash-writer.mjs <db path> <cycle> <pad>: the value of key K is "v:K|" plus <pad> dots (big values
// make commits long, so a kill is likely to land inside one). Prints "ready", then "k <key>" and "m <counter>".
import { openSqliteStore } from '../../dist/storage/sqlite.js';

const LOOPS = 4; // concurrent writer loops, so commits overlap with new writes being staged
const BATCH_MAX = 200; // puts per loop iteration (varies 1..BATCH_MAX)

const [path, cycle, pad] = process.argv.slice(2);
if (path === undefined || cycle === undefined || pad === undefined) throw new Error('usage: crash-writer.mjs <db path> <cycle> <pad>');
const padding = '.'.repeat(Number(pad));
const store = openSqliteStore(path);
const enc = new TextEncoder();
let counter = Number(store.getMeta('counter') ?? '0');
let seq = 0;

function record(n, value) {
  return { context: { w: n }, siblings: [{ dot: { actor: 'w', counter: n }, value: enc.encode(value), hlc: { wallMs: n, logical: 0 } }] };
}

/** Prints an acknowledgement; lines from one burst of resolutions go out in one write. */
let out = '';
function ack(line) {
  if (out === '') {
    queueMicrotask(() => {
      process.stdout.write(out);
      out = '';
    });
  }
  out += line;
}

async function loop(id) {
  for (let round = 0; ; round++) {
    const size = 1 + ((round * 37 + id * 53) % BATCH_MAX);
    const writes = [];
    for (let i = 0; i < size; i++) {
      seq += 1;
      const key = `c${cycle}-w${id}-${seq}`;
      writes.push(store.put(key, record(seq, `v:${key}|${padding}`)).then(() => ack(`k ${key}\n`)));
    }
    counter += 1;
    const n = counter;
    writes.push(store.setMeta('counter', String(n)).then(() => ack(`m ${n}\n`)));
    await Promise.all(writes);
  }
}

process.stdout.write('ready\n');
for (let id = 0; id < LOOPS; id++) {
  loop(id).catch((err) => {
    process.stderr.write(`writer loop ${id} failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}

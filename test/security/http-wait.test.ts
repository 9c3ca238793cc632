// `wait` never weakens `w`, against two real daemons on 127.0.0.1: with one of two voters down, w=all&wait=one
// is refused like w=all (it was answered 201 after one ack), and timeoutMs above the documented 60 s is a 400.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { strongerLevel } from '../../src/core/quorum.js';
import { Daemon } from '../../src/app/daemon.js';
import { call, status } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { CLUSTER_KEY_FILE } from '../../src/config/files.js';

const running = new Set<Daemon>();
let root = '';

async function start(dataDir: string, join?: string, keyFile?: string): Promise<Daemon> {
  const daemon = await Daemon.start({
    dataDir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    http: '127.0.0.1:0',
    join: join === undefined ? [] : [join],
    clusterKeyFile: keyFile,
    mdns: false,
    logLevel: 'silent',
    requestTimeoutMs: 1_000,
  });
  running.add(daemon);
  return daemon;
}

afterAll(async () => {
  await Promise.allSettled([...running].map((d) => d.stop()));
  if (root !== '') await rm(root, { recursive: true, force: true });
});

describe('wait and w', () => {
  it('the stronger level counts, whatever the order', () => {
    expect(strongerLevel('all', 'one', 3)).toBe('all');
    expect(strongerLevel('one', 'all', 3)).toBe('all');
    expect(strongerLevel('quorum', 2, 3)).toBe(2); // a tie: the wait level
    expect(strongerLevel(3, 'quorum', 3)).toBe(3);
    expect(strongerLevel(3, 'quorum', 5)).toBe('quorum');
    expect(() => strongerLevel('one', 4, 3)).toThrow(/impossible/);
  });

  it('w=all&wait=one with a voter down is refused (503), as w=all is; wait above w still answers 202', async () => {
    root = await mkdtemp(join(tmpdir(), 'quorumd-wait-'));
    const a = await start(join(root, 'a'));
    const b = await start(join(root, 'b'), a.listenAddrs()[0], join(root, 'a', CLUSTER_KEY_FILE));
    await waitFor('B to become a voter', async () => (await status(b.httpEndpoint)).role === 'voter');
    running.delete(b);
    await b.stop();
    await waitFor('A to see B down', async () => !(await status(a.httpEndpoint)).quorum.writable);

    const weaker = await call(a.httpEndpoint, 'PUT', '/kv/w-all?w=all&wait=one&timeoutMs=300', 'v');
    expect(weaker.status).toBe(503);
    expect(weaker.json).toMatchObject({ error: 'quorum_unavailable', acks: 1, required: 2 });
    const plain = await call(a.httpEndpoint, 'PUT', '/kv/w-all2?w=all', 'v');
    expect(plain.status).toBe(503);
    // Stronger than w: accepted at w, not complete.
    const stronger = await call(a.httpEndpoint, 'PUT', '/kv/w-one?w=one&wait=all&timeoutMs=300', 'v');
    expect(stronger.status).toBe(202);
    expect(stronger.json).toMatchObject({ acks: 1, complete: false });
    // At most the documented 60 s.
    for (const timeoutMs of ['60001', '65000']) {
      const res = await call(a.httpEndpoint, 'PUT', `/kv/w-one?w=one&wait=all&timeoutMs=${timeoutMs}`, 'v');
      expect(res.status, timeoutMs).toBe(400);
      expect(res.json).toMatchObject({ error: 'bad_request' });
    }
  }, 60_000);
});

// /watch clients that never read, against a real daemon on 127.0.0.1: 64 of them do not keep a new watcher out
// (a full set of slots closes one that stopped reading, else the oldest), and a watcher closed is closed for
// good (its socket destroyed, not left waiting for a client that never reads).
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WatchSlots } from '../../src/http/browse.js';
import { WATCHERS_MAX } from '../../src/node/changes.js';
import { Daemon } from '../../src/app/daemon.js';
import { openWatch, put } from '../helpers/http.js';
import { rawSocket, timeUntil } from '../helpers/http-raw.js';

let daemon: Daemon;
let base = '';
let dir = '';
const sockets: Socket[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quorumd-watchers-'));
  daemon = await Daemon.start({ dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], http: '127.0.0.1:0', join: [], clusterKeyFile: undefined, mdns: false, logLevel: 'silent' });
  base = daemon.httpEndpoint;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await daemon?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('watchers that stop reading', () => {
  it('64 watchers that never read do not keep a new watcher out, and the one pushed out is closed for good', async () => {
    const host = new URL(base).host;
    const closed = new Set<Socket>();
    for (let i = 0; i < WATCHERS_MAX; i++) {
      const socket = await rawSocket(base);
      sockets.push(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => closed.add(socket));
      socket.write(`GET /watch HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      socket.pause(); // never reads a byte of the stream
    }
    // Every slot taken (the streams are open and written to).
    await timeUntil(async () => daemon.runtime.changes.watchers >= WATCHERS_MAX, 5_000);
    const fresh = await openWatch(base);
    try {
      expect(fresh.status).toBe(200);
      expect((await put(base, 'watched', 'v')).status).toBe(201);
      expect(JSON.parse((await fresh.next(5_000)).data)).toMatchObject({ key: 'watched', kind: 'put' });
    } finally {
      fresh.close();
    }
    // The oldest silent watcher was pushed out: its socket is closed (a reset or an end it sees without reading).
    const first = sockets[0] as Socket;
    first.resume();
    await timeUntil(async () => closed.has(first), 2_000);
    // More new watchers keep getting in.
    for (let i = 0; i < 3; i++) {
      const again = await openWatch(base);
      expect(again.status).toBe(200);
      again.close();
    }
  }, 30_000);

  it('slots: a full set closes a watcher with a backlog first, else the oldest', () => {
    const slots = new WatchSlots(3);
    const closedNames: string[] = [];
    const make = (name: string, backlog = 0): { backlog: () => number; close: () => void } => ({ backlog: () => backlog, close: () => closedNames.push(name) });
    const a = make('a');
    slots.take(a);
    slots.take(make('b', 10));
    slots.take(make('c'));
    slots.take(make('d'));
    expect(closedNames).toEqual(['b']);
    slots.take(make('e'));
    expect(closedNames).toEqual(['b', 'a']);
    expect(slots.size).toBe(3);
    slots.release(a); // already gone: nothing happens
    expect(slots.size).toBe(3);
  });
});


// Key-value commands: `get`, `put`, `del`, `ls` (this device's keys, paged) and `watch` (the change feed,
// resumed after reconnecting).
import { DEFAULTS } from '../../config/defaults.js';
import { type Api, type ErrorBody, type JsonAnswer, type Values, failWith, query } from '../api.js';
import { COMMANDS, UsageError, noArguments } from '../usage.js';

/** `get KEY`, `put KEY VALUE|-`, `del KEY`. */
export async function keyValue(api: Api, name: 'get' | 'put' | 'del', values: Values, positionals: string[], json: boolean): Promise<number> {
  const key = positionals[0];
  if (key === undefined || key.length === 0) throw new UsageError(`missing KEY (usage: ${COMMANDS[name]?.usage})`);
  const path = `/kv/${encodeURIComponent(key)}`;
  const headers: Record<string, string> = {};
  if (typeof values.context === 'string') headers['X-Causal-Context'] = values.context;
  if (name === 'get') {
    if (positionals.length > 1) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    const res = await api.request('GET', `${path}${query({ r: values.r, resolve: values.resolve })}`);
    if (res.status === 200) {
      const value = new Uint8Array(await res.arrayBuffer());
      if (json) {
        process.stdout.write(`${JSON.stringify({ value: Buffer.from(value).toString('utf8'), context: res.headers.get('x-causal-context') })}\n`);
      } else {
        process.stdout.write(value);
        if (process.stdout.isTTY) process.stdout.write('\n');
      }
      return 0;
    }
    const body = (await res.json()) as ErrorBody;
    if (res.status === 300) {
      process.stdout.write(`${JSON.stringify(body, null, json ? 0 : 2)}\n`);
      return 0;
    }
    return failWith(body);
  }
  let body: Uint8Array | undefined;
  if (name === 'put') {
    const value = positionals[1];
    if (value === undefined) throw new UsageError(`missing VALUE (usage: ${COMMANDS.put?.usage})`);
    if (positionals.length > 2) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[2])}`);
    body = value === '-' ? await readStdin(DEFAULTS.valueBytesMax) : new TextEncoder().encode(value);
  } else if (positionals.length > 1) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  }
  const res = await api.request(name === 'put' ? 'PUT' : 'DELETE', `${path}${query({ w: values.w })}`, body, headers);
  const result = (await res.json()) as Record<string, unknown>;
  if (!res.ok) return failWith(result);
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `ok (${String(result.acks)}/${String(result.required)} acks) context=${String(result.context)}\n`);
  return 0;
}

/** A page of GET /kv. */
interface KeyPage {
  readonly keys?: ReadonlyArray<{ readonly key: string; readonly siblings: number }>;
  readonly cursor?: string | null;
}

export async function list(api: Api, values: Values, positionals: string[]): Promise<number> {
  noArguments(positionals, 1);
  const limitText = values.limit as string | undefined;
  if (limitText !== undefined && !/^[1-9][0-9]{0,8}$/.test(limitText)) throw new UsageError(`--limit must be a positive integer, got ${JSON.stringify(limitText)}`);
  const limit = limitText === undefined ? Infinity : Number(limitText);
  const prefix = positionals[0] ?? '';
  let cursor: string | null = null;
  let shown = 0;
  do {
    const page = Math.min(1000, limit - shown);
    const answer: JsonAnswer<KeyPage> = await api.getJson<KeyPage>(
      `/kv${query({ prefix: prefix === '' ? undefined : prefix, limit: String(page), cursor: cursor ?? undefined })}`,
    );
    if (!answer.ok) return failWith(answer.body);
    const body: KeyPage = answer.body;
    for (const k of body.keys ?? []) {
      process.stdout.write(values.json === true ? `${JSON.stringify(k)}\n` : `${k.key}${k.siblings > 1 ? `  (${k.siblings} siblings)` : ''}\n`);
      shown += 1;
    }
    cursor = body.cursor ?? null;
  } while (cursor !== null && shown < limit);
  return 0;
}

export async function watchChanges(api: Api, json: boolean, positionals: string[]): Promise<number> {
  noArguments(positionals, 1);
  const prefix = positionals[0];
  const path = `/watch${query({ prefix })}`;
  let lastId: string | undefined;
  const tty = process.stderr.isTTY;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = api.authHeaders();
    if (lastId !== undefined) headers['Last-Event-ID'] = lastId;
    let res: Response;
    try {
      res = await fetch(`${api.base}${path}`, { headers });
    } catch (error) {
      if (attempt === 0) {
        throw new Error(`cannot reach the quorumd API at ${api.base} (${String((error as { cause?: { code?: string } }).cause?.code ?? error)}); is the daemon running?`, { cause: error });
      }
      if (tty) process.stderr.write('\rreconnecting...');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    if (!res.ok) return failWith((await res.json()) as ErrorBody);
    if (tty) process.stderr.write(`\rwatching ${prefix === undefined ? 'every key' : `keys starting with ${JSON.stringify(prefix)}`} (Ctrl-C to stop)\n`);
    let buffer = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map<string, string>();
          for (const line of block.split('\n')) {
            const at = line.indexOf(': ');
            if (at > 0) fields.set(line.slice(0, at), line.slice(at + 2));
          }
          const id = fields.get('id');
          if (id !== undefined) lastId = id;
          const data = fields.get('data');
          if (data === undefined) continue;
          if (fields.get('event') === 'reset') {
            process.stderr.write('note: some changes were missed while disconnected (list the keys again)\n');
            continue;
          }
          if (json) {
            process.stdout.write(`${data}\n`);
          } else {
            const e = JSON.parse(data) as { key: string; kind: string; siblings: number; at: string };
            process.stdout.write(`${e.at}  ${e.kind.padEnd(8)}  ${e.key}${e.siblings > 1 ? `  (${e.siblings} siblings)` : ''}\n`);
          }
        }
      }
    } catch {
      // the connection dropped: reconnect below and resume after lastId
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function readStdin(bytesMax: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > bytesMax) throw new UsageError(`the value on stdin exceeds ${bytesMax} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

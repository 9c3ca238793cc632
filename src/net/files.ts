// Small durable-file helpers for secrets (identity and cluster keys): created with mode 0600, fsynced,
// and never silently replacing an existing file.
import { randomBytes } from 'node:crypto';
import { link, open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export const SECRET_FILE_MODE = 0o600;

/**
 * Creates `path` with `data` and `mode` atomically: the bytes go to a temporary file (created with the mode,
 * so they are never readable by others), are fsynced, and are hard-linked into place. Fails with EEXIST when
 * `path` already exists, so two processes racing on first start cannot overwrite each other's secret.
 */
export async function createFileDurably(path: string, data: Uint8Array, mode = SECRET_FILE_MODE): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const file = await open(tmp, 'wx', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

// The layer rules of eslint.config.js (no-restricted-imports per folder of src/) catch the arrows they forbid, at
// any folder depth, and let through the ones the layering allows.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint();

/** The no-restricted-imports messages for `source` imported from a file at `filePath` (which need not exist). */
async function layerErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import { x } from '${source}';\nexport { x };\n`, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer rules', () => {
  it.each([
    ['src/core/x.ts', '../storage/port.js'],
    ['src/core/x.ts', '../wire/replica.js'],
    ['src/core/x.ts', '../config/settings.js'],
    ['src/core/a/x.ts', '../../net/node.js'],
    ['src/core/x.ts', 'node:fs'],
    ['src/storage/x.ts', '../net/node.js'],
    ['src/storage/x.ts', '../node/runtime.js'],
    ['src/net/x.ts', '../storage/port.js'],
    ['src/net/a/x.ts', '../../node/runtime.js'],
    ['src/http/x.ts', '../storage/port.js'],
    ['src/http/routes/x.ts', '../../net/node.js'],
    ['src/http/x.ts', '../wire/replica.js'],
    ['src/wire/x.ts', '../storage/port.js'],
    ['src/wire/codecs/x.ts', '../../config/settings.js'], // (src/wire/gen/ is generated and not linted)
    ['src/config/x.ts', '../core/record.js'],
    ['src/node/x.ts', '../http/server.js'],
    ['src/node/a/x.ts', '../../app/daemon.js'],
    ['src/node/x.ts', '../cli/main.js'],
  ])('refuses %s importing %s', async (file, source) => {
    expect((await layerErrors(file, source)).length).toBeGreaterThan(0);
  });

  it.each([
    ['src/core/x.ts', '../config/defaults.js'],
    ['src/core/x.ts', './record.js'],
    ['src/core/replica/x.ts', '../config/proposer.js'], // a sub-folder of core, not src/config
    ['src/storage/x.ts', '../wire/record.js'],
    ['src/storage/x.ts', '../config/files.js'],
    ['src/net/x.ts', '../wire/replica.js'],
    ['src/http/x.ts', '../node/changes.js'],
    ['src/wire/x.ts', '../config/defaults.js'],
    ['src/node/x.ts', '../storage/port.js'],
    ['src/node/x.ts', '../net/transport.js'],
  ])('allows %s importing %s', async (file, source) => {
    expect(await layerErrors(file, source)).toEqual([]);
  });
});

// Bundles the compiled CLI (dist/cli/main.js) and everything it imports into dist/bundle/ with esbuild, so a
// device starts in ~0.5 s instead of ~1.2 s (loading hundreds of small ES modules dominated start-up). The
// daemon is a separate chunk, loaded only by `quorumd start`. better-sqlite3 (a native addon) stays external.
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

// Chunk names carry content hashes: start clean so old chunks do not pile up.
await rm('dist/bundle', { recursive: true, force: true });
await build({
  entryPoints: ['dist/cli/main.js'],
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['better-sqlite3', 'pino-pretty'],
  // CommonJS dependencies inside an ES module bundle need a `require`.
  banner: { js: "import { createRequire as __quorumdCreateRequire } from 'node:module'; const require = __quorumdCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

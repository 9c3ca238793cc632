// Lint rules: typescript-eslint recommended everywhere, plus purity rules for src/core (no IO, no clock,
// no randomness, no timers) so the core stays a deterministic state machine the simulator can replay.
// Layer rules (no-restricted-imports per folder of src/) keep the arrows pointing one way:
//   cli, app -> node -> storage | net -> wire -> core;  http -> node;  config is a leaf everyone may read.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Depths of src/<layer>/ sub-folders the layer rules cover (src/core/x.ts is depth 0, src/core/a/x.ts depth 1). */
const LAYER_DEPTHS = [0, 1, 2];

/**
 * A regex for a relative import, from a file `depth` folders below src/<layer>/, into src/<names>/ (optionally
 * only files matching `rest`). Depth-exact so a sub-folder of a layer (say src/core/config/) is not mistaken for
 * the top-level layer of the same name.
 */
function layer(depth, names, rest = '') {
  return `^(\\.\\./){${depth + 1}}(${names})/${rest}`;
}

/** One no-restricted-imports block per depth for the files of one layer; `patterns(depth)` lists the patterns. */
function layerRules(dir, patterns) {
  return LAYER_DEPTHS.map((depth) => ({
    files: [`src/${dir}/${'*/'.repeat(depth)}*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns: patterns(depth) }] },
  }));
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/wire/gen/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly',
        clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly',
        URL: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', AbortController: 'readonly',
        AbortSignal: 'readonly', queueMicrotask: 'readonly', performance: 'readonly', fetch: 'readonly',
        Response: 'readonly', URLSearchParams: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...layerRules('core', (d) => [
    { group: ['node:*', 'fs', 'net', 'http', 'os', 'child_process', 'crypto'], message: 'src/core is pure: no IO.' },
    { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'better-sqlite3'], message: 'src/core is pure: no network or storage.' },
    { regex: layer(d, 'storage|net|node|http|cli|app|wire'), message: 'src/core must not import adapters.' },
    { regex: layer(d, 'config', '(?!defaults\\.js$)'), message: 'src/core may read only src/config/defaults.ts.' },
  ]),
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'src/core has no timers: time comes in as an argument.' },
        { name: 'setInterval', message: 'src/core has no timers.' },
        { name: 'setImmediate', message: 'src/core has no timers.' },
        { name: 'performance', message: 'src/core reads no clock.' },
        { name: 'process', message: 'src/core does no IO.' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'src/core reads no clock: pass nowMs in.' },
        { object: 'Math', property: 'random', message: 'src/core uses no randomness: pass a seeded source in.' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date']", message: 'src/core reads no clock.' }],
    },
  },
  // storage and net do not know each other; neither reaches up into node, http, cli or the composition root.
  ...layerRules('storage', (d) => [
    { regex: layer(d, 'net'), message: 'src/storage does not know the network: go through src/node.' },
    { regex: layer(d, 'node|http|cli|app'), message: 'src/storage is an adapter: it must not import the layers above it.' },
  ]),
  ...layerRules('net', (d) => [
    { regex: layer(d, 'storage'), message: 'src/net does not know storage: go through src/node.' },
    { regex: layer(d, 'node|http|cli|app'), message: 'src/net is an adapter: it must not import the layers above it.' },
  ]),
  // http reaches the daemon through src/node only.
  ...layerRules('http', (d) => [
    { regex: layer(d, 'storage|net|wire'), message: 'src/http goes through src/node, not to storage, net or wire directly.' },
    { regex: layer(d, 'cli|app'), message: 'src/http must not import the CLI or the composition root.' },
  ]),
  // wire is encoding only: core types in, bytes out (config/defaults for its size limits).
  ...layerRules('wire', (d) => [
    { regex: layer(d, 'storage|net|node|http|cli|app'), message: 'src/wire imports only src/core (and config defaults).' },
    { regex: layer(d, 'config', '(?!defaults\\.js$)'), message: 'src/wire may read only src/config/defaults.ts.' },
  ]),
  // config is a leaf: settings and defaults import no other layer.
  ...layerRules('config', (d) => [
    { regex: layer(d, 'core|storage|net|node|http|cli|app|wire'), message: 'src/config is a leaf: it imports no other layer.' },
  ]),
  // node must not import http (the composition root in src/app wires them).
  ...layerRules('node', (d) => [
    { regex: layer(d, 'http|cli|app'), message: 'src/node must not import http, the CLI or the composition root (src/app wires them).' },
  ]),
);

// Lint rules: typescript-eslint recommended everywhere, plus purity rules for src/core (no IO, no clock,
// no randomness, no timers) so the core stays a deterministic state machine the simulator can replay.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/wire/*.pb.ts', 'bench/results/**'] },
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
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'net', 'http', 'os', 'child_process', 'crypto'], message: 'src/core is pure: no IO.' },
          { group: ['libp2p', '@libp2p/*', '@chainsafe/*', 'better-sqlite3'], message: 'src/core is pure: no network or storage.' },
          { group: ['../storage/*', '../net/*', '../node/*', '../http/*', '../cli/*'], message: 'src/core must not import adapters.' },
        ],
      }],
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
);

// The test groups (one entry per folder of test/): vitest.config.ts builds one vitest project per group, the
// test:* scripts run one project each, and scripts/check-test-groups.mjs fails when a test file is in no group
// or in two. Plain JS so both the vitest config and a bare node script can read it.

/** Group name -> the folders of test/ whose *.test.ts files belong to it. */
export const TEST_GROUPS = {
  // Fast, in-process, no daemons: the pure core, codecs, adapters, short fuzz runs (FUZZ_RUNS unset), lint rules.
  unit: ['core', 'config', 'wire', 'storage', 'http', 'net', 'fuzz', 'lint'],
  // The deterministic simulator's seeds and checker.
  sim: ['sim'],
  // Real daemons and runtimes on 127.0.0.1: node, end-to-end, security, browser UI, device units.
  integration: ['integration', 'node', 'system', 'security', 'ui', 'devices'],
  // Network namespaces on a virtual LAN (skipped where namespaces are unavailable).
  lan: ['lan'],
};

/** The include globs of one group. */
export function groupInclude(group) {
  return TEST_GROUPS[group].map((dir) => `test/${dir}/**/*.test.ts`);
}

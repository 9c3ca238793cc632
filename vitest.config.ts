import { defineConfig } from 'vitest/config';
import { groupInclude, TEST_GROUPS } from './test/groups.mjs';

// One vitest project per test group (test/groups.mjs); `vitest run` runs them all, `--project <group>` one.
// No root `include`: a project's include would be added to it, not replace it.
export default defineConfig({
  test: {
    setupFiles: ['./test/setup/polyfill.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: (Object.keys(TEST_GROUPS) as (keyof typeof TEST_GROUPS)[]).map((group) => ({
      extends: true,
      test: { name: group, include: groupInclude(group) },
    })),
  },
});

// Fails when a test file (test/**/*.test.ts) is in no test group of test/groups.mjs or in more than one, or
// when a group names a folder that does not exist: every test runs under exactly one of the test:* scripts.
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEST_GROUPS } from '../test/groups.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const testDir = join(root, 'test');

/** Every *.test.ts under `dir`, as paths relative to test/ with '/' separators. */
function testFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(path));
    else if (entry.name.endsWith('.test.ts')) out.push(relative(testDir, path).split(sep).join('/'));
  }
  return out;
}

const problems = [];
for (const [group, dirs] of Object.entries(TEST_GROUPS)) {
  for (const dir of dirs) if (!existsSync(join(testDir, dir))) problems.push(`group ${group} names test/${dir}, which does not exist`);
}
const files = testFiles(testDir);
for (const file of files) {
  const groups = Object.entries(TEST_GROUPS)
    .filter(([, dirs]) => dirs.some((dir) => file.startsWith(`${dir}/`)))
    .map(([group]) => group);
  if (groups.length === 0) problems.push(`test/${file} is in no test group (add its folder to test/groups.mjs)`);
  if (groups.length > 1) problems.push(`test/${file} is in ${groups.length} test groups: ${groups.join(', ')}`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`test groups: ${files.length} test files, each in exactly one of ${Object.keys(TEST_GROUPS).join(', ')}`);

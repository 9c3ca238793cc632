// Types for test/groups.mjs (plain JS so a bare node script can read it too).
export declare const TEST_GROUPS: Readonly<Record<'unit' | 'sim' | 'integration' | 'lan', readonly string[]>>;
export declare function groupInclude(group: keyof typeof TEST_GROUPS): string[];

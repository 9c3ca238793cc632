// Types of scripts/nemesis-check.mjs (the nemesis history checker), for the TypeScript tests that import it.
export interface NemesisOp {
  id: number;
  key: string;
  kind: 'put' | 'del' | 'get';
  value?: string;
  ctx?: string[] | null;
  start: number;
  end: number;
  outcome: 'ok' | 'failed' | 'unknown' | 'not-sent';
  effEnd?: number;
  values?: string[];
  final?: boolean;
  device?: string;
}

export interface CheckResult {
  writesAttempted: number;
  writesAcked: number;
  deletesAttempted: number;
  deletesAcked: number;
  reads: number;
  readsOk: number;
  finalReads: number;
  lost: number;
  staleReads: number;
  resurrected: number;
  unexpected: number;
  uncheckedWrites: number;
  examples: { lost: object[]; stale: object[]; resurrected: object[]; unexpected: object[] };
}

export interface Verdict {
  lost: number;
  staleReads: number;
  resurrected: number;
  unexpected: number;
}

export function checkHistory(ops: readonly NemesisOp[], options?: { examples?: number }): CheckResult;
export const selfTestCases: ReadonlyArray<{ name: string; ops: NemesisOp[]; expect: Verdict }>;
export function runSelfTest(): string[];

// The device's health and history: GET /status (this device's view of the cluster), /healthz (liveness, open),
// /readyz (readiness with its reasons, open) and /audit (the audit log's newest entries).
import { z } from 'zod';
import { DEFAULTS } from '../../config/defaults.js';
import { AUDIT_READ_MAX } from '../../node/audit.js';
import type { HttpBackend } from '../backend.js';
import { HttpError } from '../errors.js';
import { parseQuery } from '../parse.js';
import { sendJson } from '../respond.js';
import type { Route } from '../router.js';

/** Audit entries GET /audit answers without a limit (DEFAULTS.auditPageEntries). */
const AUDIT_LIMIT_DEFAULT = DEFAULTS.auditPageEntries;

const auditQuery = z
  .object({
    limit: z.string().regex(/^[1-9][0-9]{0,3}$/, `an integer from 1 to ${AUDIT_READ_MAX}`).optional(),
    kind: z.enum(['started', 'stopped', 'membership', 'operator', 'quorum-failure', 'unauthorized', 'catch-up']).optional(),
  })
  .strict();

export function statusRoutes(backend: Pick<HttpBackend, 'backend' | 'readiness' | 'audit'>): Route[] {
  return [
    {
      methods: ['GET', 'HEAD'],
      path: '/audit',
      query: 'handler',
      handle: ({ res, query }) => {
        const params = parseQuery(auditQuery, query);
        const limit = params.limit === undefined ? AUDIT_LIMIT_DEFAULT : Number(params.limit);
        if (limit > AUDIT_READ_MAX) throw new HttpError(400, 'bad_request', `invalid query parameter limit: at most ${AUDIT_READ_MAX}`);
        sendJson(res, 200, { entries: backend.audit(limit, params.kind) });
      },
    },
    { methods: ['GET', 'HEAD'], path: '/healthz', open: true, query: 'none', handle: ({ res }) => sendJson(res, 200, { ok: true }) },
    {
      methods: ['GET', 'HEAD'],
      path: '/readyz',
      open: true,
      query: 'none',
      handle: ({ res }) => {
        const reasons = backend.readiness();
        if (reasons.length === 0) return sendJson(res, 200, { ready: true });
        sendJson(res, 503, { error: 'not_ready', message: reasons.join('; '), reasons });
      },
    },
    { methods: ['GET', 'HEAD'], path: '/status', query: 'none', handle: ({ res }) => sendJson(res, 200, backend.backend.status()) },
  ];
}

// The operator's membership routes, POST /cluster/approve|admit|remove|leave (404 when the node offers no
// membership operations): JSON bodies, each answered with the resulting configuration or admission state.
import { toString as u8ToString } from 'uint8arrays';
import { z } from 'zod';
import { DEFAULTS } from '../../config/defaults.js';
import type { MembershipBackend } from '../backend.js';
import { HttpError } from '../errors.js';
import { sendJson } from '../respond.js';
import type { BodyRule, Route, RouteRequest } from '../router.js';

/** Bytes a membership request body may hold (a peer ID or a duration). */
const CLUSTER_BODY_BYTES_MAX = 4096;

const JSON_BODY: BodyRule = { bytesMax: CLUSTER_BODY_BYTES_MAX, tooLarge: 'value_too_large', type: 'json' };

export function clusterRoutes(membership: MembershipBackend | undefined): Route[] {
  /** The membership operations, or 404 (a node without them has no such routes). */
  const need = ({ path }: RouteRequest): MembershipBackend => {
    if (membership === undefined) throw new HttpError(404, 'not_found', `no route for ${path}`);
    return membership;
  };
  return [
    {
      methods: ['POST'],
      path: '/cluster/approve',
      query: 'none',
      body: JSON_BODY,
      handle: async (request) => {
        const backend = need(request);
        const peer = parsePeerBody(await request.body());
        sendJson(request.res, 200, await backend.approve(peer));
      },
    },
    {
      methods: ['POST'],
      path: '/cluster/admit',
      query: 'none',
      body: JSON_BODY,
      handle: async (request) => {
        const backend = need(request);
        const forMs = parseAdmitBody(await request.body());
        sendJson(request.res, 200, await backend.admit(forMs));
      },
    },
    {
      methods: ['POST'],
      path: '/cluster/remove',
      query: 'none',
      body: JSON_BODY,
      handle: async (request) => {
        const backend = need(request);
        const peer = parsePeerBody(await request.body());
        sendJson(request.res, 200, await backend.remove(peer));
      },
    },
    {
      methods: ['POST'],
      path: '/cluster/leave',
      query: 'none',
      // Takes no body (curl -X POST sends no Content-Type); one that is sent must still say JSON.
      body: { ...JSON_BODY, type: 'json-or-none' },
      handle: async (request) => {
        const backend = need(request);
        await request.body();
        sendJson(request.res, 200, await backend.leave());
      },
    },
  ];
}

const peerBody = z.object({ peer: z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{32,128}$/, 'a base58 libp2p peer ID') }).strict();

function parsePeerBody(body: Uint8Array): string {
  let json: unknown;
  try {
    json = JSON.parse(u8ToString(body));
  } catch {
    throw new HttpError(400, 'bad_request', 'the body must be JSON {"peer": "<peer ID>"}');
  }
  const parsed = peerBody.safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'bad_request', `bad body: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data.peer;
}

const admitBody = z
  .object({
    forMs: z
      .number()
      .int('forMs must be an integer of milliseconds')
      .min(0, 'forMs must be at least 0 (0 closes the window)')
      .max(DEFAULTS.admissionWindowMsMax, `forMs must be at most ${DEFAULTS.admissionWindowMsMax} (an hour)`),
  })
  .strict();

function parseAdmitBody(body: Uint8Array): number {
  let json: unknown;
  try {
    json = JSON.parse(u8ToString(body));
  } catch {
    throw new HttpError(400, 'bad_request', 'the body must be JSON {"forMs": <milliseconds>}');
  }
  const parsed = admitBody.safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'bad_request', `bad body: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data.forMs;
}

// Writing answers: JSON bodies, raw values, and every failure as JSON `{error, message}` with its status
// (HttpError its own; QuorumdError by STATUS_BY_CODE; anything else 500 `internal`, a bug).
import type http from 'node:http';
import { QuorumUnavailableError, QuorumdError } from '../core/errors.js';
import { HttpError, STATUS_BY_CODE } from './errors.js';

export function sendJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendBytes(res: http.ServerResponse, status: number, value: Uint8Array): void {
  res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Content-Length': value.length });
  res.end(value);
}

/** The answer to a failed request; once headers are sent (a stream), the connection is closed instead. */
export function sendError(res: http.ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof HttpError) {
    if ('allow' in error.extra) res.setHeader('Allow', String((error.extra as { allow: string }).allow));
    return sendJson(res, error.status, { error: error.code, message: error.message });
  }
  if (error instanceof QuorumUnavailableError) {
    return sendJson(res, STATUS_BY_CODE[error.code], {
      error: error.code,
      message: error.message,
      acks: error.acks,
      required: error.required,
      voters: error.voters,
    });
  }
  if (error instanceof QuorumdError) {
    return sendJson(res, STATUS_BY_CODE[error.code], { error: error.code, message: error.message });
  }
  sendJson(res, 500, { error: 'internal', message: error instanceof Error ? error.message : String(error) });
}

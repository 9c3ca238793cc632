// GET /metrics: the Prometheus text of the API's and the daemon's figures (src/http/metrics.ts).
import type { ApiMetrics } from '../metrics.js';
import type { Route } from '../router.js';

export function metricsRoutes(metrics: ApiMetrics): Route[] {
  return [
    {
      methods: ['GET', 'HEAD'],
      path: '/metrics',
      query: 'none',
      handle: async ({ res }) => {
        const text = await metrics.text();
        res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      },
    },
  ];
}

// The status page's own files (GET /, /ui/app.css, /ui/app.js): they hold no data, so a browser loads them
// without the token (open), then asks for it.
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from '../page.js';
import type { Route } from '../router.js';

const PAGE_FILES = [
  { path: '/', type: 'text/html; charset=utf-8', body: PAGE_HTML },
  { path: '/ui/app.css', type: 'text/css; charset=utf-8', body: PAGE_CSS },
  { path: '/ui/app.js', type: 'text/javascript; charset=utf-8', body: PAGE_JS },
];

export function pageRoutes(): Route[] {
  return PAGE_FILES.map((page): Route => ({
    methods: ['GET', 'HEAD'],
    path: page.path,
    open: true,
    query: 'none',
    handle: ({ res, method }) => {
      res.writeHead(200, {
        'Content-Type': page.type,
        'Content-Length': Buffer.byteLength(page.body),
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(method === 'HEAD' ? undefined : page.body);
    },
  }));
}

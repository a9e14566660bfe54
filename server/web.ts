/**
 * The coordinator's web pages: the browser participant (/participant/) and the operators'
 * dashboard (/dashboard/), served from their build (`dist/web`, written by
 * `node dist/simulations/build-web.js`), and each session's shared reference set
 * (/reference/SESSION) for that session's browser participants.
 *
 * Everything a page loads comes from here: pages work on a closed network, and their Content
 * Security Policy lets them connect to this coordinator only — a participant's private files,
 * read in the page, have nowhere else to go.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WebOptions {
  /** The built pages; by default dist/web beside this module's build. */
  root?: string;
  /**
   * Reference-set files by session id (an IDX images file, gzipped or not, or a CSV), served to
   * the session's participants at /reference/SESSION on their token. A session without one here
   * asks its browser participants to pick the file themselves.
   */
  references?: Record<string, string>;
}

export const PAGES = ['participant', 'dashboard'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  // instantiateStreaming needs the wasm MIME type.
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * 'self' only, for scripts and connections (ws: and wss: to this host are 'self' in current
 * browsers). 'wasm-unsafe-eval' lets the tfjs wasm backend compile its module; nothing else may
 * evaluate code.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "frame-ancestors 'none'",
].join('; ');

export function defaultWebRoot(): string {
  return fileURLToPath(new URL('../web/', import.meta.url));
}

/**
 * Answers the pages' HTTP requests on the coordinator's server. socket.io handles its own path
 * (/socket.io/) and is left alone. `sessionOfToken` names the session a participant token belongs
 * to (undefined for none), so that a reference set goes to that session's participants only.
 */
export function serveWeb(http: HttpServer, options: WebOptions, sessionOfToken: (token: string) => string | undefined): void {
  const root = resolve(options.root ?? defaultWebRoot());
  const missing = PAGES.filter((page) => !existsSync(join(root, page, 'index.html')));
  if (missing.length > 0) {
    throw new Error(`the web pages are not built (no ${missing.map((p) => join(root, p, 'index.html')).join(', ')}): run node dist/simulations/build-web.js`);
  }
  const references = new Map(Object.entries(options.references ?? {}));
  for (const [session, file] of references) {
    if (!existsSync(file)) throw new Error(`the reference set for session ${session}, ${file}, does not exist`);
  }
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://coordinator').pathname;
    if (path.startsWith('/socket.io/')) return;
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
      if (path === '/') return send(res, 200, CONTENT_TYPES['.html']!, INDEX);
      if (path.startsWith('/reference/')) return sendReference(req, res, decodeURIComponent(path.slice('/reference/'.length)), references, sessionOfToken);
      const page = PAGES.find((p) => path === `/${p}` || path.startsWith(`/${p}/`));
      if (page === undefined) return send(res, 404, 'text/plain; charset=utf-8', `no page at ${path}; the pages are /participant/ and /dashboard/\n`);
      if (path === `/${page}`) {
        res.writeHead(301, { location: `/${page}/` }).end();
        return;
      }
      const relative = normalize(decodeURIComponent(path)).slice(1);
      const file = resolve(root, relative.endsWith(sep) || relative === page ? join(relative, 'index.html') : relative);
      // A path that climbs out of the build folder (/participant/../../etc/passwd) finds nothing.
      if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
        return send(res, 404, 'text/plain; charset=utf-8', `not found: ${path}\n`);
      }
      send(res, 200, CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', readFileSync(file));
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n');
    }
  });
}

function sendReference(
  req: IncomingMessage,
  res: ServerResponse,
  session: string,
  references: Map<string, string>,
  sessionOfToken: (token: string) => string | undefined,
): void {
  const match = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  const owner = match === null ? undefined : sessionOfToken(match[1]!);
  // The same answer for no token and a wrong one: the page cannot probe which sessions exist.
  if (owner === undefined) return send(res, 401, 'text/plain; charset=utf-8', 'E_AUTH: the reference set is for the session\'s participants: send a participant token\n');
  if (owner !== session) return send(res, 403, 'text/plain; charset=utf-8', `E_AUTH: this token belongs to session ${owner}, not ${session}\n`);
  const file = references.get(session);
  if (file === undefined) return send(res, 404, 'text/plain; charset=utf-8', `the coordinator serves no reference set for session ${session}: pick the file the operator gave you\n`);
  send(res, 200, 'application/octet-stream', readFileSync(file), { 'x-codistill-file': encodeURIComponent(file.split(/[\\/]/).at(-1) ?? 'reference') });
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache',
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

const INDEX = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>codistill coordinator</title></head>
<body><h1>codistill coordinator</h1>
<ul><li><a href="/participant/">Join a session as a participant</a> (your files stay in your browser)</li>
<li><a href="/dashboard/">Dashboard</a> (observer or admin token)</li></ul></body></html>
`;

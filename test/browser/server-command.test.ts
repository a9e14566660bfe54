/**
 * `codistill server --operators FILE --web --reference FILE` as a process: the pages and the
 * reference set over HTTP (with their headers and refusals), an admin stopping the session over
 * the /operator namespace, and the operators file's validation.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { get } from 'node:http';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage, PROTOCOL_VERSION, readReply, replyMessages } from '../../protocol/index.js';
import { OPERATOR_NAMESPACE, operatorClientMessages } from '../../protocol/operator.js';
import { readOperators } from '../../server/cli.js';
import { buildWeb } from '../../simulations/build-web.js';

const CLI = join(import.meta.dirname, '../../dist/simulations/cli.js');
const ADMIN_TOKEN = 'the-admin-token-0123456789';
const PARTICIPANT_TOKEN = 'site-a-token-0123456789ab';

describe('codistill server --web --operators', () => {
  let dir: string;
  beforeAll(async () => {
    // The command serves dist/web, as `npm run build` leaves it.
    await buildWeb({ quiet: true });
    dir = mkdtempSync(join(tmpdir(), 'codistill-server-web-'));
  }, 120_000);

  it('serves the pages and the reference set, and stops when an admin says so', { timeout: 60_000 }, async () => {
    writeFileSync(join(dir, 'session.yaml'), [
      'id: web-cli', 'algorithm: dml', 'rounds: 3', 'numClasses: 10', 'referenceSize: 2',
      'participants:', `  - { id: site-a, token: ${PARTICIPANT_TOKEN} }`,
    ].join('\n'));
    writeFileSync(join(dir, 'operators.yaml'), `operators:\n  - { id: root, token: ${ADMIN_TOKEN}, role: admin }\n`);
    writeFileSync(join(dir, 'reference.csv'), 'label,a,b\n0,1,2\n1,3,4\n');
    const server = spawn('node', [CLI, 'server', '--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'history.json'),
      '--operators', join(dir, 'operators.yaml'), '--web', '--reference', join(dir, 'reference.csv')]);
    let out = '';
    server.stdout.on('data', (b: Buffer) => (out += b.toString()));
    server.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout.on('data', () => {
          const match = /browser participants: (http:\/\/127\.0\.0\.1:\d+)\/participant\//.exec(out);
          if (match) resolve(match[1]!);
        });
        void exited.then((code) => reject(new Error(`server exited with ${String(code)}: ${out}`)));
      });
      expect(out).toContain(`dashboard: ${url}/dashboard/ (1 operators)`);

      for (const page of ['participant', 'dashboard']) {
        const response = await fetch(`${url}/${page}/`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
        // The page may talk to this coordinator only.
        expect(response.headers.get('content-security-policy')).toContain("connect-src 'self'");
        const html = await response.text();
        const script = /src="(\/[a-z]+\/assets\/[^"]+\.js)"/.exec(html)?.[1];
        expect(script).toBeDefined();
        const js = await fetch(`${url}${script}`);
        expect(js.status).toBe(200);
        expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      }
      const wasm = await fetch(`${url}/participant/wasm/tfjs-backend-wasm-simd.wasm`);
      expect(wasm.headers.get('content-type')).toBe('application/wasm');
      expect(new Uint8Array(await wasm.arrayBuffer()).subarray(0, 4)).toEqual(new Uint8Array([0, 0x61, 0x73, 0x6d]));
      // Paths that try to climb out of the build folder, sent raw (fetch would normalise them first).
      const rawStatus = (path: string) => new Promise<number>((resolve, reject) => {
        const { hostname, port } = new URL(url);
        get({ hostname, port, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(await rawStatus('/participant/../../../package.json')).toBe(404);
      expect(await rawStatus('/participant/..%2f..%2f..%2fpackage.json')).toBe(404);
      expect(await rawStatus('/dashboard/%2e%2e/%2e%2e/%2e%2e/package.json')).toBe(404);
      expect((await fetch(`${url}/nothing-here`)).status).toBe(404);

      // The reference set: to the session's participants only.
      const reference = (token?: string) => fetch(`${url}/reference/web-cli`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
      expect((await reference()).status).toBe(401);
      expect((await reference(ADMIN_TOKEN)).status).toBe(401);
      const served = await reference(PARTICIPANT_TOKEN);
      expect(served.status).toBe(200);
      expect(served.headers.get('x-codistill-file')).toBe('reference.csv');
      expect(await served.text()).toBe(readFileSync(join(dir, 'reference.csv'), 'utf8'));

      // The admin stops the session from the operator namespace; the command writes the history and exits.
      const admin = io(`${url}${OPERATOR_NAMESPACE}`, { transports: ['websocket'], auth: { v: PROTOCOL_VERSION, token: ADMIN_TOKEN }, reconnection: false });
      await new Promise<void>((resolve, reject) => {
        admin.once('connect', resolve);
        admin.once('connect_error', reject);
      });
      const envelope = encodeMessage(operatorClientMessages.control, { v: PROTOCOL_VERSION, session: 'web-cli', action: 'stop' });
      readReply(replyMessages.ack, await admin.timeout(5000).emitWithAck('control', envelope));
      admin.close();
      expect(await exited).toBe(0);
      expect(out).toContain('admin root: stop session web-cli');
      expect(out).toContain('session ended: stopped by admin root');
      expect(JSON.parse(readFileSync(join(dir, 'history.json'), 'utf8')).endReason).toBe('stopped by admin root');
    } finally {
      server.kill();
    }
  });

  it('names what is wrong in an operators file', () => {
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    expect(readOperators(write('ok.json', JSON.stringify([{ id: 'o', token: 'x'.repeat(16), role: 'observer' }])))).toEqual([{ id: 'o', token: 'x'.repeat(16), role: 'observer' }]);
    expect(() => readOperators(write('role.yaml', `- { id: o, token: ${'x'.repeat(16)}, role: root }\n`))).toThrow(/0\.role: must be one of observer, admin/);
    expect(() => readOperators(write('short.yaml', '- { id: o, token: short, role: admin }\n'))).toThrow(/0\.token: tokens must have at least 16 characters/);
    expect(() => readOperators(write('extra.yaml', `- { id: o, token: ${'x'.repeat(16)}, role: admin, sessions: [a] }\n`))).toThrow(/unknown field "sessions"/);
    expect(() => readOperators(join(dir, 'missing.yaml'))).toThrow(/cannot read operators file .*missing\.yaml: no such file/);
  });
});

/**
 * The README's deployment guide, run as written: its bash blocks between the
 * `<!-- deployment-guide -->` markers, with `bash -euo pipefail`, in an empty folder, over TLS
 * on 127.0.0.1. Only what must differ on a test machine is substituted: the port (a free one)
 * and the path of `dist/simulations/cli.js` (the repository's, since the folder is not the
 * repository). If the guide stops working, this test fails.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, startCli, startServer } from '../server/fault-kit.js';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/simulations/cli.js');
const GUIDE_PORT = '8443';

/** The bash code blocks between the guide's markers in README.md, joined in order. */
export function guideScript(readme: string): string {
  const section = /<!-- deployment-guide -->\n([\s\S]*?)<!-- \/deployment-guide -->/.exec(readme);
  if (section === null) throw new Error('README.md has no <!-- deployment-guide --> … <!-- /deployment-guide --> section');
  const blocks = [...section[1]!.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (blocks.length === 0) throw new Error('the deployment guide section holds no ```bash block');
  return blocks.join('\n');
}

/** Replaces every `from` by `to`, and says so if there is none: a substitution that no longer applies is a changed guide. */
function substitute(text: string, from: RegExp, to: string): string {
  if (!from.test(text)) throw new Error(`the deployment guide no longer contains ${String(from)}`);
  return text.replace(new RegExp(from.source, 'g'), to);
}

function runBash(script: string, cwd: string, ms: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // Its own process group, ended when bash ends or at the deadline: a script that fails (set -e)
    // leaves the server and clients it started in the background running.
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const endGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // ESRCH: nothing of the group is left.
      }
    };
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(endGroup, ms);
    child.on('exit', () => {
      clearTimeout(timer);
      endGroup();
    });
    // After the pipes have closed, so that the output is whole.
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the README deployment guide', () => {
  it('runs as written: two sites over TLS complete the session, save their students, and predict uses one', { timeout: 300_000 }, async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const guide = guideScript(readme);
    // A background process's exit status reaches bash -e only through its own wait.
    expect(guide).toContain('wait $SITE_A; wait $SITE_B; wait $SERVER');
    const port = String(await freePort());
    let script = substitute(guide, /node dist\/simulations\/cli\.js/, `node '${CLI}'`);
    script = substitute(script, new RegExp(`\\b${GUIDE_PORT}\\b`), port);

    const dir = mkdtempSync(join(tmpdir(), 'codistill-guide-'));
    writeFileSync(join(dir, 'guide.sh'), script); // for a person reading a failure
    const started = Date.now();
    // About 15 s on 2 cores; a site that fails leaves the others waiting for it until this deadline.
    const { code, output } = await runBash(script, dir, 150_000);
    const seconds = (Date.now() - started) / 1000;
    const log = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : `(no ${name})`);
    const context = `in ${dir}\n--- output\n${output}\n--- server.log\n${log('server.log')}\n--- site-a.log\n${log('site-a.log')}\n--- site-b.log\n${log('site-b.log')}`;
    expect(code, context).toBe(0);
    expect(seconds, 'the guide says it takes about 15 seconds').toBeLessThan(120);

    const digest = /^referenceDigest: ([0-9a-f]{64})$/m.exec(log('demo-sites.txt'))?.[1];
    expect(digest, context).toBeDefined();
    expect(readFileSync(join(dir, 'session.yaml'), 'utf8')).toContain(`referenceDigest: ${digest}`);
    for (const site of ['site-a', 'site-b']) {
      const text = log(`${site}.log`);
      // Each participant computed the digest demo-sites printed, from the file as it loads it.
      expect(text, context).toContain(`joined guide as ${site} (dml, round 0); reference set 200 rows, sha256 ${digest}`);
      // The coordinator's end message arrived: not "the link closed before …".
      expect(text, context).toMatch(/^session ended: completed 3 rounds; /m);
      expect(text).not.toMatch(/link closed/);
      expect(existsSync(join(dir, 'students/guide', site, 'model.json')), `${site}'s student`).toBe(true);
      expect(existsSync(join(dir, 'students/guide', site, 'card.json')), `${site}'s card`).toBe(true);
    }
    expect(log('server.log'), context).toMatch(/^round 3\/3: 2 contributors, 2 reports/m);
    expect(log('server.log'), context).toMatch(/^session ended: completed 3 rounds/m);
    expect(output, context).toMatch(/^accuracy \d+\.\d\d% \(\d+\/200\)$/m);
    expect(readFileSync(join(dir, 'preds.csv'), 'utf8').trim().split('\n')).toHaveLength(201);
    process.stdout.write(`the deployment guide ran in ${seconds.toFixed(1)} s\n`);

    // Outside the guide: a site with another reference set is refused at the join, by name.
    const other = startCli(['demo-sites', '--sites', '1', '--reference-size', '200', '--held-out', '10', '--rows', '50', '--seed', '2', '--out', join(dir, 'other')]);
    expect(await other.exited, other.output()).toBe(0);
    const otherDigest = /^referenceDigest: ([0-9a-f]{64})$/m.exec(other.output())![1]!;
    expect(otherDigest).not.toBe(digest);
    const tokenA = /id: site-a, token: ([0-9a-f]+) \}/.exec(readFileSync(join(dir, 'session.yaml'), 'utf8'))![1]!;
    const server = await startServer(['--config', join(dir, 'session.yaml'), '--port', '0', '--out', join(dir, 'refused-history.json')]);
    try {
      const site = startCli([
        'client', '--server', server.url, '--session', 'guide', '--data', join(dir, 'data/site-a.csv'),
        '--reference', join(dir, 'other/reference-idx3-ubyte'), '--model', 'mlp', '--no-save', '--out', join(dir, 'refused.json'),
      ], { CODISTILL_TOKEN: tokenA });
      const exit = await site.exited;
      expect(exit, site.output()).not.toBe(0);
      expect(site.output()).toMatch(new RegExp(`E_REFERENCE: site-a's reference set has digest ${otherDigest.slice(0, 12)}…; session guide's is ${digest!.slice(0, 12)}…`));
    } finally {
      server.process.kill();
    }
  });
});

/** Where the code that makes a student comes from, read in Node (the browser page says what it knows itself). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** codistill's own folder: the nearest package.json named codistill above this file (src or dist). */
function packageRoot(): URL {
  for (let url = new URL('.', import.meta.url), k = 0; k < 6; url = new URL('..', url), k++) {
    try {
      if ((JSON.parse(readFileSync(new URL('package.json', url), 'utf8')) as { name?: string }).name === 'codistill') return url;
    } catch {
      // not here; one folder up
    }
  }
  throw new Error('codistill\'s package.json was not found above client/student-io');
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null; // an installed package, not a checkout
  }
}

let provenanceAtStart: { codistill: string; commit: string | null; dirty: boolean | null; tfjs: string } | undefined;

/** codistill's version, the git commit when run from a checkout, and tfjs's version; read once. */
export function codeProvenance(): { codistill: string; commit: string | null; dirty: boolean | null; tfjs: string } {
  if (provenanceAtStart !== undefined) return provenanceAtStart;
  const own = JSON.parse(readFileSync(new URL('package.json', packageRoot()), 'utf8')) as { version: string };
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  let tfjs = 'unknown';
  try {
    tfjs = (require('@tensorflow/tfjs/package.json') as { version: string }).version;
  } catch {
    // tfjs bundled some other way: the version is unknown, not fatal
  }
  provenanceAtStart = { codistill: own.version, commit: git(['rev-parse', 'HEAD']), dirty: status === null ? null : status.length > 0, tfjs };
  return provenanceAtStart;
}

/**
 * Builds the coordinator's two web pages with vite into dist/web/: the browser participant
 * (client/browser/) and the operators' dashboard (server/dashboard/). Each is one bundle of the
 * repository's own modules — the participant page runs the same runParticipant, procedures,
 * Student and protocol code as a Node participant — plus, for the participant, the tfjs wasm
 * binaries it loads at run time. Prints each page's size and writes it to dist/web/bundle-size.json.
 *
 *   node dist/simulations/build-web.js [--out DIR]
 */
import { builtinModules } from 'node:module';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type Plugin } from 'vite';

export interface PageSize {
  page: string;
  files: Array<{ file: string; bytes: number; gzipBytes: number }>;
  /** All files of the page, and the JavaScript alone (what the browser parses). */
  bytes: number;
  gzipBytes: number;
  scriptBytes: number;
  scriptGzipBytes: number;
}

export interface WebBuild {
  out: string;
  pages: PageSize[];
  ms: number;
}

/** The repository root: the nearest folder above this module with a package.json (source or dist/ build alike). */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root (no package.json above the build script)');
    dir = up;
  }
  return dir;
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * Fails the build when codistill's own browser code reaches a Node module. Vite would otherwise
 * swap in an empty stub that throws only when the page runs — a page that builds and then breaks.
 * Dependencies are exempt: tfjs and its emscripten glue import Node modules on code paths they
 * take only under Node.
 */
function refuseNodeBuiltins(): Plugin {
  return {
    name: 'codistill:refuse-node-builtins',
    enforce: 'pre',
    resolveId(id, importer) {
      if (NODE_BUILTINS.has(id) && !(importer ?? '').includes(`${sep}node_modules${sep}`)) {
        this.error(`${importer === undefined ? 'the entry' : relative(process.cwd(), importer)} imports ${id}: code in the browser bundle must not reach Node modules`);
      }
      return null;
    },
  };
}

const PAGES = [
  { page: 'participant', source: 'client/browser' },
  { page: 'dashboard', source: 'server/dashboard' },
] as const;

/** The wasm binaries the tfjs wasm backend fetches (setWasmPaths points the page at them). */
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

function sizeOf(page: string, dir: string): PageSize {
  const files = filesUnder(dir).sort().map((file) => {
    const bytes = readFileSync(file);
    return { file: relative(dir, file), bytes: bytes.byteLength, gzipBytes: gzipSync(bytes, { level: 9 }).byteLength };
  });
  const scripts = files.filter((f) => f.file.endsWith('.js'));
  const sum = (list: typeof files, key: 'bytes' | 'gzipBytes') => list.reduce((a, f) => a + f[key], 0);
  return { page, files, bytes: sum(files, 'bytes'), gzipBytes: sum(files, 'gzipBytes'), scriptBytes: sum(scripts, 'bytes'), scriptGzipBytes: sum(scripts, 'gzipBytes') };
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

export function formatSizes(result: WebBuild): string {
  const lines = [`web pages built into ${result.out} in ${(result.ms / 1000).toFixed(1)} s:`];
  for (const p of result.pages) {
    lines.push(`  ${p.page.padEnd(12)} JavaScript ${kib(p.scriptBytes).padStart(11)} (${kib(p.scriptGzipBytes)} gzipped); all files ${kib(p.bytes)} (${kib(p.gzipBytes)} gzipped)`);
    for (const f of p.files) lines.push(`    ${f.file.padEnd(48)} ${kib(f.bytes).padStart(11)}  ${kib(f.gzipBytes).padStart(11)} gzipped`);
  }
  return lines.join('\n');
}

export async function buildWeb(options: { out?: string; quiet?: boolean } = {}): Promise<WebBuild> {
  const started = Date.now();
  const root = repositoryRoot();
  const out = resolve(options.out ?? join(root, 'dist/web'));
  for (const { page, source } of PAGES) {
    const outDir = join(out, page);
    await build({
      configFile: false,
      root: join(root, source),
      // The coordinator serves each page under its own path.
      base: `/${page}/`,
      logLevel: options.quiet === true ? 'error' : 'warn',
      plugins: [refuseNodeBuiltins()],
      build: {
        outDir,
        emptyOutDir: true,
        target: 'es2022',
        // tfjs alone is over a megabyte: the default 500 kB warning would fire on every build.
        chunkSizeWarningLimit: 8192,
        reportCompressedSize: false,
      },
    });
    if (page === 'participant') {
      const wasmDir = join(outDir, 'wasm');
      mkdirSync(wasmDir, { recursive: true });
      const from = join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
      for (const file of WASM_FILES) copyFileSync(join(from, file), join(wasmDir, file));
    }
  }
  const result: WebBuild = { out, pages: PAGES.map(({ page }) => sizeOf(page, join(out, page))), ms: Date.now() - started };
  writeFileSync(join(out, 'bundle-size.json'), `${JSON.stringify({ builtAt: new Date().toISOString(), ...result }, null, 2)}\n`);
  if (options.quiet !== true) process.stdout.write(`${formatSizes(result)}\nsizes written to ${join(out, 'bundle-size.json')}\n`);
  return result;
}

// Run as a script (node dist/simulations/build-web.js), not when imported by a test.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  buildWeb({ out: values.out }).catch((error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}

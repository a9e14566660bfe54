/**
 * Issue 15, defect 6b: the reproducibility manifest recorded `msgpackr: null`. msgpackr's
 * `exports` map leaves out package.json, so `require('msgpackr/package.json')` throws; the
 * manifest reads each package's package.json from disk instead. Every package the manifest lists
 * that is installed gets its version.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageVersion } from '../../simulations/outputs.js';

const require = createRequire(import.meta.url);
const root = join(import.meta.dirname, '../../node_modules');
const listed = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'socket.io', 'socket.io-client', 'msgpackr', 'zod'];

describe('the manifest\'s package versions', () => {
  it('reads msgpackr\'s version although its exports map hides package.json', () => {
    expect(() => require('msgpackr/package.json')).toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED|not defined by "exports"/);
    const expected = (JSON.parse(readFileSync(join(root, 'msgpackr/package.json'), 'utf8')) as { version: string }).version;
    expect(packageVersion('msgpackr')).toBe(expected);
  });

  it('gives every installed package its version and null to the ones not installed', () => {
    for (const name of listed) {
      const file = join(root, name, 'package.json');
      const expected = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version : null;
      expect(packageVersion(name), name).toBe(expected);
    }
    expect(packageVersion('no-such-package-codistill')).toBeNull();
  });
});

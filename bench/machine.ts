/** The machine and software a run measured, for the head of RESULTS.md. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);

export interface MachineInfo {
  date: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  platform: string;
  node: string;
  tfjs: string;
  tfjsBackendWasm: string;
  backend: string;
  wasmSimd?: boolean;
  wasmThreads?: boolean;
  /** 1-minute load average when the run started: > cores means others were computing too. */
  loadAverage: number[];
  commit?: string;
  /** Files changed since the commit, when the tree is not clean. */
  uncommitted?: number;
}

function packageVersion(name: string): string {
  try {
    const file = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** /proc/cpuinfo names the CPU more precisely than os.cpus() on some virtual machines. */
function cpuModel(): string {
  const fromOs = os.cpus()[0]?.model?.trim();
  if (fromOs) return fromOs;
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    return line?.split(':')[1]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  const status = git(['status', '--porcelain']);
  const info: MachineInfo = {
    date: new Date().toISOString(),
    cpuModel: cpuModel(),
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryBytes: os.totalmem(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tfjs: packageVersion('@tensorflow/tfjs'),
    tfjsBackendWasm: packageVersion('@tensorflow/tfjs-backend-wasm'),
    backend: tf.getBackend() ?? 'none',
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
    commit: git(['rev-parse', '--short', 'HEAD']),
    uncommitted: status === undefined ? undefined : status.split('\n').filter((l) => l.length > 0).length,
  };
  if (info.backend === 'wasm') {
    info.wasmSimd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
    info.wasmThreads = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
  }
  return info;
}

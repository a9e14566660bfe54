/**
 * Architectures for local distillation, written as short layer lists so that a teacher and a
 * student can be named on a command line or in a config file:
 *
 *   d512,d512            784-512-512-10 MLP (dense + ReLU layers; the logits layer is implicit)
 *   c8,p2,c16,p2,d64     5×5 convolutions with 8 and 16 filters, 2×2 max-pooling, dense 64
 *   c8k3                 a 3×3 convolution with 8 filters
 *
 * plus the aliases of client/models.ts (`mlp`, `cnn`) for the same networks. Convolutions are
 * stride 1 and 'valid' (the stride-1 filter gradient is the one the wasm backend computes
 * natively, see client/kernels). ONE's multi-branch student is a plain list split in two: the
 * first `sharedLayers` layers are shared, the rest are copied into each branch.
 */
import { DistillError } from './types.js';

export type LayerSpec =
  | { type: 'dense'; units: number }
  | { type: 'conv'; filters: number; kernelSize: number }
  | { type: 'pool'; size: number };

export interface PlainArchitecture {
  kind: 'plain';
  layers: LayerSpec[];
}

/** The ONE gate: FC + softmax, or FC + BatchNorm + ReLU + softmax as in the paper and its code. */
export type GateKind = 'fc' | 'fc-bn-relu';

export interface OneArchitecture {
  kind: 'one';
  shared: LayerSpec[];
  /** Layers of each branch, before its logits layer. */
  branch: LayerSpec[];
  branches: number;
  gate: GateKind;
}

export type Architecture = PlainArchitecture | OneArchitecture;

/** Named networks; `mlp` and `cnn` are client/models.ts's students. */
export const ARCHITECTURE_ALIASES: Readonly<Record<string, string>> = {
  mlp: 'd256,d128',
  cnn: 'c8,p2,c16,p2,d64',
};

const TOKEN = /^(?:d(\d+)|c(\d+)(?:k(\d+))?|p(\d+))$/;

/** Parses `d512,d512`, `c8,p2,c16,p2,d64` or an alias into layers. */
export function parseLayers(text: string): LayerSpec[] {
  const source = ARCHITECTURE_ALIASES[text] ?? text;
  const tokens = source.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  if (tokens.length === 0) throw new DistillError('E_CONFIG', `architecture "${text}" has no layers; write e.g. d512,d512 or c8,p2,c16,p2,d64`);
  return tokens.map((token) => {
    const m = TOKEN.exec(token);
    const positive = (raw: string | undefined) => {
      const v = Number(raw);
      if (!Number.isInteger(v) || v < 1) throw new DistillError('E_CONFIG', `architecture "${text}": "${token}" needs a positive size`);
      return v;
    };
    if (m === null) {
      throw new DistillError('E_CONFIG', `architecture "${text}": cannot read "${token}"; layers are dN (dense), cN or cNkK (conv, K×K, default 5), pN (max-pool N×N)`);
    }
    if (m[1] !== undefined) return { type: 'dense', units: positive(m[1]) };
    if (m[2] !== undefined) return { type: 'conv', filters: positive(m[2]), kernelSize: m[3] === undefined ? 5 : positive(m[3]) };
    return { type: 'pool', size: positive(m[4]) };
  });
}

export function formatLayers(layers: readonly LayerSpec[]): string {
  return layers
    .map((l) => (l.type === 'dense' ? `d${l.units}` : l.type === 'conv' ? `c${l.filters}${l.kernelSize === 5 ? '' : `k${l.kernelSize}`}` : `p${l.size}`))
    .join(',');
}

export function plainArchitecture(text: string): PlainArchitecture {
  return { kind: 'plain', layers: parseLayers(text) };
}

/**
 * ONE over a plain layer list: the first `sharedLayers` layers shared (default: all but the
 * last), the rest in each of `branches` branches.
 */
export function oneArchitecture(text: string, branches: number, sharedLayers?: number, gate: GateKind = 'fc-bn-relu'): OneArchitecture {
  const layers = parseLayers(text);
  const shared = sharedLayers ?? layers.length - 1;
  if (!Number.isInteger(branches) || branches < 2) throw new DistillError('E_CONFIG', `ONE needs at least 2 branches; got ${branches}`);
  if (!Number.isInteger(shared) || shared < 1 || shared > layers.length) {
    throw new DistillError('E_CONFIG', `ONE over "${text}": shared layers must be an integer in [1, ${layers.length}]; got ${shared}`);
  }
  return { kind: 'one', shared: layers.slice(0, shared), branch: layers.slice(shared), branches, gate };
}

export function describeArchitecture(a: Architecture): string {
  if (a.kind === 'plain') return formatLayers(a.layers);
  const branch = a.branch.length > 0 ? `${formatLayers(a.branch)},logits` : 'logits';
  return `${formatLayers(a.shared)} → ${a.branches} × [${branch}], gate ${a.gate}`;
}

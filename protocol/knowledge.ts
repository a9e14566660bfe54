/**
 * What a knowledge payload must satisfy beyond its bytes: the semantic checks both ends share.
 */
import { ErrorCode, ProtocolError } from './errors.js';
import { unpackTensor, type WireDtype, type WireTensor } from './tensor.js';

/**
 * How far a row of soft predictions may stray from summing to 1 after the wire encoding:
 * float32 rounding, float16's 2^-11 relative step per entry, uint8's half step per entry.
 */
function simplexTolerance(dtype: WireDtype, numClasses: number, scale: number | undefined): number {
  switch (dtype) {
    case 'float32':
      return 1e-3;
    case 'float16':
      return 1e-3 + numClasses * 2 ** -11;
    case 'uint8':
      return 1e-3 + (numClasses * (scale ?? 0)) / 2;
  }
}

/**
 * Unpacks reference predictions and checks they are probabilities: shape [rows, numClasses],
 * every value finite in [0, 1] and every row summing to 1 within the encoding's tolerance.
 */
export function readReferencePredictions(tensor: WireTensor, rows: number, numClasses: number, round: number): Float32Array {
  let values: Float32Array;
  try {
    values = unpackTensor(tensor, [rows, numClasses]);
  } catch (error) {
    if (error instanceof ProtocolError) {
      throw new ProtocolError(error.code, `predictions for round ${round}: ${error.toWire().message}`);
    }
    throw error;
  }
  const tolerance = simplexTolerance(tensor.dtype, numClasses, tensor.scale);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < numClasses; k++) {
      const p = values[r * numClasses + k]!;
      if (!(p >= -tolerance && p <= 1 + tolerance)) {
        throw new ProtocolError(
          ErrorCode.Value,
          `predictions for round ${round}: row ${r}, class ${k} is ${p}; soft predictions must be probabilities in [0, 1]`,
        );
      }
      sum += p;
    }
    if (Math.abs(sum - 1) > tolerance) {
      throw new ProtocolError(
        ErrorCode.Value,
        `predictions for round ${round}: row ${r} sums to ${sum.toFixed(6)}; soft predictions must sum to 1 (±${tolerance.toPrecision(2)}) — send softmax(logits / T), not logits`,
      );
    }
  }
  return values;
}

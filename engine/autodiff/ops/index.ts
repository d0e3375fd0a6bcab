import type { OpDef } from '../types.js';
import { conv } from './conv.js';
import { elementwise } from './elementwise.js';
import { linear } from './linear.js';
import { pool } from './pool.js';
import { shape } from './shape.js';
import { softmax } from './softmax.js';

/** Every op the engine can differentiate, by ONNX op type. */
export const OPS: Record<string, OpDef> = { ...elementwise, ...linear, ...conv, ...pool, ...shape, ...softmax };

export function hasGradient(opType: string): boolean {
  return OPS[opType]?.grad !== undefined;
}

import type { GraphBuilder } from '../onnx/builder.js';
import type { NodeProto, TensorProto } from '../onnx/proto.js';

/** Dimensions; -1 where unknown until run time (usually the batch). */
export type Shape = number[];

export interface InferContext {
  node: NodeProto;
  shapes: (Shape | undefined)[];
  /** A constant input's values (initializer or Constant node), when it is one. */
  constant: (name: string) => TensorProto | undefined;
}

export interface GradContext {
  g: GraphBuilder;
  node: NodeProto;
  /** Gradient flowing into each output, or undefined where none does. */
  dOut: (string | undefined)[];
  /** Which inputs need a gradient. */
  needs: boolean[];
  shapeOf: (name: string) => Shape;
  constant: (name: string) => TensorProto | undefined;
  /**
   * Per-example mode (DP-SGD): gradients of parameters keep the batch axis, [N, ...parameter shape], each row the
   * gradient of that example's own loss. Only ops marked `perExample` honour it.
   */
  perExample?: boolean;
}

/** One op: its forward shape rule and, beside it, its gradient rule. */
export interface OpDef {
  infer: (ctx: InferContext) => Shape[];
  /** Gradients for each input (undefined where not needed or not differentiable). */
  grad?: (ctx: GradContext) => (string | undefined)[];
  /** Its gradient rule gives per-example parameter gradients when asked (GradContext.perExample). */
  perExample?: boolean;
}

export class AutodiffError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AutodiffError';
  }
}

export function nodeLabel(node: NodeProto): string {
  return `${node.opType} node "${node.name || node.output?.[0] || '?'}"`;
}

// A small typed builder for ONNX graphs, used by the autodiff to emit gradient graphs and by tests and the model zoo.
import {
  AttributeType,
  DataType,
  num,
  onnx,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';

export type Dim = number | string;
/** A float attribute even when its value is whole (alpha: 1.0). */
export class Float {
  constructor(readonly value: number) {}
}
export const float = (v: number) => new Float(v);
export type AttrValue = number | Float | number[] | Float[] | string | TensorProto;

export function tensor(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: number[]): TensorProto {
  const dataType =
    data instanceof Float32Array ? DataType.FLOAT : data instanceof BigInt64Array ? DataType.INT64 : DataType.INT32;
  return {
    name,
    dataType,
    dims,
    rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

/** Values of a float or int64 tensor, whichever field holds them. */
export function tensorValues(t: TensorProto): Float32Array | BigInt64Array {
  if (t.dataType === DataType.INT64) {
    if (t.rawData?.length) return new BigInt64Array(t.rawData.slice().buffer);
    return BigInt64Array.from((t.int64Data ?? []).map((x) => BigInt(num(x))));
  }
  if (t.rawData?.length) return new Float32Array(t.rawData.slice().buffer);
  return Float32Array.from(t.floatData ?? []);
}

export function valueInfo(name: string, dims: Dim[] | undefined, elemType = DataType.FLOAT): ValueInfoProto {
  const shape = dims
    ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) }
    : undefined;
  return { name, type: { tensorType: { elemType, shape } } };
}

function attribute(name: string, v: AttrValue): AttributeProto {
  if (v instanceof Float) return { name, type: AttributeType.FLOAT, f: v.value };
  if (typeof v === 'number')
    return Number.isInteger(v) ? { name, type: AttributeType.INT, i: v } : { name, type: AttributeType.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) {
    if (v.some((x) => x instanceof Float))
      return { name, type: AttributeType.FLOATS, floats: v.map((x) => (x instanceof Float ? x.value : x)) };
    return { name, type: AttributeType.INTS, ints: v as number[] };
  }
  return { name, type: AttributeType.TENSOR, t: v };
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;

  constructor(private readonly prefix = '') {}

  fresh(hint: string): string {
    return `${this.prefix}${hint}_${this.counter++}`;
  }

  input(name: string, dims: Dim[], elemType = DataType.FLOAT): string {
    this.inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  output(name: string, dims?: Dim[], elemType = DataType.FLOAT): string {
    this.outputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  init(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: number[]): string {
    this.initializers.push(tensor(name, data, dims));
    return name;
  }

  /** A float constant (as an initializer, so the runtime folds it). */
  constF(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    return this.init(this.fresh('c'), Float32Array.from(values), dims);
  }

  constI64(values: number[]): string {
    return this.init(this.fresh('i'), BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue | undefined> = {},
    outputs: number | string[] = 1,
  ): string {
    return this.opN(opType, inputs, attrs, outputs)[0];
  }

  opN(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue | undefined> = {},
    outputs: number | string[] = 1,
  ): string[] {
    const names =
      typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase())) : outputs;
    const attribute_ = Object.entries(attrs).flatMap(([k, v]) => (v === undefined ? [] : [attribute(k, v)]));
    this.nodes.push({ opType, input: inputs, output: names, name: this.fresh(opType), attribute: attribute_ });
    return names;
  }

  /** A node with attributes copied as they are (e.g. from a forward node). */
  opRaw(opType: string, inputs: string[], attribute: AttributeProto[], outputs: number): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({ opType, input: inputs, output: names, name: this.fresh(opType), attribute });
    return names;
  }

  build(opts: { opset?: number; name?: string } = {}): ModelProto {
    return {
      irVersion: 8,
      producerName: 'secmlops',
      opsetImport: [{ domain: '', version: opts.opset ?? 17 }],
      graph: {
        name: opts.name ?? 'graph',
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      },
    };
  }
}

export function getAttr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute?.find((a) => a.name === name);
}
export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = getAttr(node, name);
  return a ? num(a.i) : dflt;
}
export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = getAttr(node, name);
  return a ? (a.f ?? dflt) : dflt;
}
export function attrInts(node: NodeProto, name: string, dflt: number[] | undefined): number[] | undefined {
  const a = getAttr(node, name);
  return a ? (a.ints ?? []).map(num) : dflt;
}
export function attrString(node: NodeProto, name: string, dflt: string): string {
  const a = getAttr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : dflt;
}

export { onnx, DataType };

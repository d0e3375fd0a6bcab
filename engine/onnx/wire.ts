// A pass over a model's protobuf wire format before it is decoded, because the decoder and onnxruntime disagree on
// what some byte strings mean, and decoding itself can cost far more memory than the file:
// - a field that may appear once (graph, a tensor's data type, an attribute's graph…) appearing twice: protobufjs
//   keeps the last, onnxruntime merges messages, so the model we check would not be the model it runs;
// - a field this schema does not know: dropped by our decoder, read by a newer onnxruntime;
// - millions of tiny messages or values (6 million empty nodes in 12 MB took 1 GB to decode).
// All three are refused here, naming where, before a single message object is built.
import protobuf from 'protobufjs/minimal.js';

type Field = readonly [name: string, message: string | 0, repeated: 0 | 1];

/** Field numbers of the messages the decoder knows (onnx-proto's onnx.proto), and which of them are messages. */
const SCHEMA: Record<string, Record<number, Field>> = {
  ModelProto: {
    1: ['irVersion', 0, 0],
    2: ['producerName', 0, 0],
    3: ['producerVersion', 0, 0],
    4: ['domain', 0, 0],
    5: ['modelVersion', 0, 0],
    6: ['docString', 0, 0],
    7: ['graph', 'GraphProto', 0],
    8: ['opsetImport', 'OperatorSetIdProto', 1],
    14: ['metadataProps', 'StringStringEntryProto', 1],
    20: ['trainingInfo', 'TrainingInfoProto', 1],
    25: ['functions', 'FunctionProto', 1],
  },
  GraphProto: {
    1: ['node', 'NodeProto', 1],
    2: ['name', 0, 0],
    5: ['initializer', 'TensorProto', 1],
    10: ['docString', 0, 0],
    11: ['input', 'ValueInfoProto', 1],
    12: ['output', 'ValueInfoProto', 1],
    13: ['valueInfo', 'ValueInfoProto', 1],
    14: ['quantizationAnnotation', 'TensorAnnotation', 1],
    15: ['sparseInitializer', 'SparseTensorProto', 1],
  },
  NodeProto: {
    1: ['input', 0, 1],
    2: ['output', 0, 1],
    3: ['name', 0, 0],
    4: ['opType', 0, 0],
    5: ['attribute', 'AttributeProto', 1],
    6: ['docString', 0, 0],
    7: ['domain', 0, 0],
  },
  AttributeProto: {
    1: ['name', 0, 0],
    2: ['f', 0, 0],
    3: ['i', 0, 0],
    4: ['s', 0, 0],
    5: ['t', 'TensorProto', 0],
    6: ['g', 'GraphProto', 0],
    7: ['floats', 0, 1],
    8: ['ints', 0, 1],
    9: ['strings', 0, 1],
    10: ['tensors', 'TensorProto', 1],
    11: ['graphs', 'GraphProto', 1],
    13: ['docString', 0, 0],
    14: ['tp', 'TypeProto', 0],
    15: ['typeProtos', 'TypeProto', 1],
    20: ['type', 0, 0],
    21: ['refAttrName', 0, 0],
    22: ['sparseTensor', 'SparseTensorProto', 0],
    23: ['sparseTensors', 'SparseTensorProto', 1],
  },
  TensorProto: {
    1: ['dims', 0, 1],
    2: ['dataType', 0, 0],
    3: ['segment', 'Segment', 0],
    4: ['floatData', 0, 1],
    5: ['int32Data', 0, 1],
    6: ['stringData', 0, 1],
    7: ['int64Data', 0, 1],
    8: ['name', 0, 0],
    9: ['rawData', 0, 0],
    10: ['doubleData', 0, 1],
    11: ['uint64Data', 0, 1],
    12: ['docString', 0, 0],
    13: ['externalData', 'StringStringEntryProto', 1],
    14: ['dataLocation', 0, 0],
  },
  Segment: { 1: ['begin', 0, 0], 2: ['end', 0, 0] },
  SparseTensorProto: { 1: ['values', 'TensorProto', 0], 2: ['indices', 'TensorProto', 0], 3: ['dims', 0, 1] },
  ValueInfoProto: { 1: ['name', 0, 0], 2: ['type', 'TypeProto', 0], 3: ['docString', 0, 0] },
  TypeProto: {
    1: ['tensorType', 'TypeTensor', 0],
    4: ['sequenceType', 'TypeSequence', 0],
    5: ['mapType', 'TypeMap', 0],
    6: ['denotation', 0, 0],
    8: ['sparseTensorType', 'TypeTensor', 0],
    9: ['optionalType', 'TypeSequence', 0],
  },
  TypeTensor: { 1: ['elemType', 0, 0], 2: ['shape', 'TensorShapeProto', 0] },
  TypeSequence: { 1: ['elemType', 'TypeProto', 0] },
  TypeMap: { 1: ['keyType', 0, 0], 2: ['valueType', 'TypeProto', 0] },
  TensorShapeProto: { 1: ['dim', 'Dimension', 1] },
  Dimension: { 1: ['dimValue', 0, 0], 2: ['dimParam', 0, 0], 3: ['denotation', 0, 0] },
  TensorAnnotation: { 1: ['tensorName', 0, 0], 2: ['quantParameterTensorNames', 'StringStringEntryProto', 1] },
  StringStringEntryProto: { 1: ['key', 0, 0], 2: ['value', 0, 0] },
  OperatorSetIdProto: { 1: ['domain', 0, 0], 2: ['version', 0, 0] },
  TrainingInfoProto: {
    1: ['initialization', 'GraphProto', 0],
    2: ['algorithm', 'GraphProto', 0],
    3: ['initializationBinding', 'StringStringEntryProto', 1],
    4: ['updateBinding', 'StringStringEntryProto', 1],
  },
  FunctionProto: {
    1: ['name', 0, 0],
    4: ['input', 0, 1],
    5: ['output', 0, 1],
    6: ['attribute', 0, 1],
    7: ['node', 'NodeProto', 1],
    8: ['docString', 0, 0],
    9: ['opsetImport', 'OperatorSetIdProto', 1],
    10: ['domain', 0, 0],
  },
};

export interface WireLimits {
  /** Messages of any type (nodes, attributes, tensors, dimensions…). */
  maxMessages: number;
  /** Entries of repeated non-message fields that are not packed (each a separate value to allocate). */
  maxValues: number;
  /** Message nesting. */
  maxNesting: number;
}

/** Thrown with where in the model the problem sits (e.g. ModelProto.graph.node[3].attribute[0]). */
export class WireError extends Error {
  constructor(
    message: string,
    /** Bytes that are not an ONNX model at all, as opposed to a model refused for what it holds. */
    readonly malformed: boolean,
  ) {
    super(message);
  }
}

const LENGTH_DELIMITED = 2;

/** Checks a model's wire format; throws WireError naming the first problem. */
export function checkWire(bytes: Uint8Array, limits: WireLimits): void {
  const reader = protobuf.Reader.create(bytes);
  const path: string[] = ['ModelProto'];
  let messages = 0;
  let values = 0;
  const fail = (what: string, malformed = true): never => {
    throw new WireError(`${path.join('.')}: ${what}`, malformed);
  };
  const scan = (type: string, end: number, depth: number): void => {
    const schema = SCHEMA[type];
    const seen = new Set<number>();
    const counts = new Map<number, number>();
    while (reader.pos < end) {
      const tag = reader.uint32();
      const number = tag >>> 3;
      const wire = tag & 7;
      const field = schema[number];
      if (!field)
        fail(`field ${number} is not part of ${type} as this engine reads it; refused (a newer runtime may read it)`);
      const [name, message, repeated] = field;
      if (!repeated) {
        if (seen.has(number))
          fail(`${name} appears twice; onnxruntime would merge both and run a model other than the one checked`, false);
        seen.add(number);
      }
      if (message) {
        if (wire !== LENGTH_DELIMITED) fail(`${name} has wire type ${wire}, not a message`);
        const length = reader.uint32();
        if (reader.pos + length > end) fail(`${name} runs past the end of its message`);
        if (++messages > limits.maxMessages)
          fail(`more than ${limits.maxMessages} messages in the model (maxMessages)`, false);
        if (depth + 1 > limits.maxNesting) fail(`messages nested more than ${limits.maxNesting} deep`, false);
        const k = counts.get(number) ?? 0;
        counts.set(number, k + 1);
        path.push(repeated ? `${name}[${k}]` : name);
        scan(message, reader.pos + length, depth + 1);
        path.pop();
        continue;
      }
      if (repeated && ++values > limits.maxValues)
        fail(`more than ${limits.maxValues} separately encoded values in the model (maxValues)`, false);
      reader.skipType(wire);
      if (reader.pos > end) fail(`${name} runs past the end of its message`);
    }
    if (reader.pos !== end) fail('a field runs past the end of its message');
  };
  try {
    scan('ModelProto', bytes.length, 0);
  } catch (e) {
    if (e instanceof WireError) throw e;
    // protobufjs's own bounds errors (a truncated varint or length): say where.
    throw new WireError(`${path.join('.')}: ${(e as Error).message}`, true);
  }
}

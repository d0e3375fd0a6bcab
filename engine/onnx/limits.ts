// Model limits, in a module of their own with no imports so the CLI can show them without loading the engine.
/**
 * What a model may hold before onnxruntime sees it. The defaults admit a ResNet-50-sized classifier (about 25M
 * parameters, a few hundred nodes and initializers) with room to spare, and bound the worst case: session
 * creation grows faster than linearly in nodes (measured: 20,000 unused nodes on one input took 12 s, 5,000 took
 * 0.65 s; bench/RESULTS.md has the worst cases at these caps).
 */
export const MODEL_LIMITS = {
  /** The file itself. */
  maxBytes: 512 * 1024 * 1024,
  /** Any one tensor, dense (sparse tensors count at the size onnxruntime expands them to). */
  maxTensorBytes: 1024 * 1024 * 1024,
  /** All tensors together, dense. */
  maxTotalTensorBytes: 1024 * 1024 * 1024,
  /** Nodes in every graph, subgraph and training graph, with local functions expanded at each call. */
  maxNodes: 5000,
  /** Initializers, sparse initializers and tensor attributes, everywhere. */
  maxInitializers: 5000,
  /** Subgraph nesting (an If inside a Loop body is depth 2). */
  maxGraphDepth: 8,
  /** Protobuf messages of any kind, counted on the wire before decoding (decoding costs ~200 bytes each). */
  maxMessages: 200_000,
  /** Separately encoded entries of repeated scalar fields (node inputs, dims, unpacked numbers). */
  maxValues: 5_000_000,
} as const;

export type ModelLimits = { -readonly [K in keyof typeof MODEL_LIMITS]: number };
export type LoadOptions = Partial<ModelLimits>;

// Messages between a supervising process and an engine job process.
import type { DriftReference } from '../../policy/evidence.js';
import type { AttackSpec } from '../attacks/run.js';
import type { BackdoorConfig, PoisoningConfig, TrainConfig } from '../../policy/types.js';
import type { BackdoorTrigger } from '../poison/backdoor.js';
import type { SqueezeConfig } from '../detect/squeeze.js';
import type { AttackMetrics } from '../metrics/metrics.js';
import type { BackdoorMetrics } from '../poison/backdoor.js';
import type { MembershipResult } from '../privacy/mia.js';
import type { LoadOptions } from '../onnx/limits.js';
import type { DpTrainResult } from '../train/dp-sgd.js';
import type { TrainProgress } from '../train/trainer.js';
import type { Partition } from '../federated/partition.js';

/** The dataset part of every job: an IDX pair, the digests its files must have, the file cap, the classes. */
export interface JobDataset {
  images: string;
  labels: string;
  /** The digests the dataset files must have (from the manifest); a file that changed is refused. */
  imagesSha256?: string;
  labelsSha256?: string;
  /** The largest decoded size of one IDX file (artifacts.dataset.maxFileBytes). */
  maxBytes?: number;
  classes: number;
}

export interface EvaluateRequest extends JobDataset {
  kind: 'evaluate';
  modelPath: string;
  /** The digest the model's bytes must have; checked again right before they are parsed. */
  modelSha256: string;
  limit?: number;
  range: [number, number];
  seed: number;
  attacks: (AttackSpec & { id: string })[];
  curve?: { attack: 'fgsm' | 'pgd'; steps?: number; eps: number[] };
  /** A BadNets trigger to measure the backdoor success rate of. */
  backdoor?: BackdoorConfig;
  /** Membership inference: `count` images of these training files against `count` of the evaluated split. */
  members?: JobDataset & { count: number };
  threads?: number;
  executionProvider?: 'cpu' | 'cuda';
  /** The policy's evaluate.modelLimits (defaults: engine/onnx/limits.ts). */
  modelLimits?: LoadOptions;
  /** Summarise the clean images as the monitor's drift reference. */
  reference?: boolean;
  /**
   * One of `count` parts of the set (engine/jobs/evaluate-shards.ts cuts them on batch boundaries): the attacks and
   * the curve run on its images only, the backdoor, membership and drift reference in part 0; the result carries
   * the per-image values for the merge.
   */
  shard?: { index: number; count: number };
}

/** Per-image results of one attack on a part of the set, as columns (the merge concatenates them). */
export interface SampleColumns {
  label: number[];
  clean: number[];
  adversarial: number[];
  linf: number[];
  l2: number[];
}

/** What one part of an evaluation measured, per image where metrics need the images (medians). */
export interface EvaluatePart {
  /** The whole set's size, and this part's images [start, end). */
  images: number;
  start: number;
  end: number;
  classes: number;
  withoutGradient: string[];
  /** Clean predictions right, for a suite without attacks. */
  cleanCorrect: number;
  attacks: { id: string; spec: AttackSpec; seconds: number; samples: SampleColumns }[];
  /** Per curve point, the images robust to it. */
  curve?: { attack: string; eps: number; robust: number }[];
  reference?: DriftReference;
  backdoor?: BackdoorMetrics;
  membership?: MembershipResult;
}

export interface EvaluateResult {
  cleanAccuracy: number;
  images: number;
  /** Ops without a gradient rule; white-box attacks were replaced by Square Attack when non-empty. */
  withoutGradient: string[];
  attacks: { id: string; spec: AttackSpec; metrics: AttackMetrics; seconds: number }[];
  reference?: DriftReference;
  curve?: { attack: string; eps: number; robustAccuracy: number }[];
  backdoor?: BackdoorMetrics;
  membership?: MembershipResult;
  /** With a shard request: this part's per-image values (the fields above then describe this part alone). */
  part?: EvaluatePart;
}

/** The policy's train block (without its split, resolved to files) and where the job works. */
export type TrainRequest = Omit<TrainConfig, 'split'> &
  JobDataset & {
    kind: 'train';
    /** A checkpoint file (and its digest) to continue from. */
    resume?: { path: string; sha256: string };
    /** Where the job writes checkpoint files and the model; the supervisor stores them and may delete them. */
    workDir: string;
    threads?: number;
    /** A federated client's round: start from the global weights and train on this client's part of the split. */
    client?: FederatedClientRound;
    /** Early stopping's clean-accuracy floor on the held-out set (an experiment's `adversarialTraining.minClean`). */
    earlyStopMinClean?: number;
  };

export interface FederatedClientRound {
  /** The global model's flat float32 parameters, and the digest the file must have. */
  init: { path: string; sha256: string };
  shard: { clients: number; index: number; partition: Partition; seed: number };
}

export interface TrainResult {
  modelPath: string;
  /** A federated client's round: the last weights as a flat float32 vector (engine/federated/vector.ts). */
  weightsPath?: string;
  /** The images trained on (a federated client's part of the split). */
  images?: number;
  history: { epoch: number; loss: number; accuracy: number; robustValidation?: number; seconds: number }[];
  bestEpoch?: number;
  resumedFrom?: { epoch: number; step: number };
  /** DP-SGD: the (ε, δ) the accountant gives for the steps taken, its best order and the mechanism's parameters. */
  privacy?: DpTrainResult['privacy'];
}

/** The data stage's poisoning defense on one split: detect, remove what was flagged, write the sanitised copy. */
export interface SanitiseRequest extends JobDataset {
  kind: 'sanitise';
  config: Omit<PoisoningConfig, 'split'>;
  /** Where the job writes the sanitised files and the list of removed indices. */
  workDir: string;
  threads?: number;
}

export interface SanitiseResult {
  /** Gzipped IDX files with the removed images left out, in the input's layout, and removed.json. */
  imagesPath: string;
  labelsPath: string;
  removedPath: string;
  /** Images read, and images removed (ascending indices in removed.json). */
  images: number;
  removed: number;
  /** Per class: images, flagged, and the detector's score for the class. */
  classes: { class: number; images: number; flagged: number; score: number }[];
  /** The reference model's accuracy on the suspect data in its last epoch. */
  referenceAccuracy?: number;
}

/** One cell of `secmlops experiment`: an attack on the test images and the safety-critical class's miss rate. */
export interface ExperimentEvalRequest extends JobDataset {
  kind: 'experiment';
  modelPath: string;
  modelSha256: string;
  limit?: number;
  range: [number, number];
  seed: number;
  attack: 'trigger' | 'fgsm' | 'deepfool';
  eps: number;
  trigger?: BackdoorTrigger;
  safetyCritical: number;
  /** Feature squeezing calibrated on the first `count` images of these files at `fpr`. */
  guard?: { config: SqueezeConfig; fpr: number; calibration: JobDataset & { count: number } };
  /** The safety-critical class's decision margin (engine/metrics/safety-margin.ts), calibrated on these images. */
  margin?: { maxAccuracyDrop: number; calibration: JobDataset & { from: number; count: number } };
}

export interface ExperimentEvalResult {
  images: number;
  cleanAccuracy: number;
  robustAccuracy: number;
  safetyCritical: {
    images: number;
    cleanMissRate: number;
    missRate: number;
    /** Clean images of other classes the model calls safety-critical: what a margin costs. */
    falseAlarmRate?: number;
  };
  guard?: { threshold: number; flagged: number; guardedMissRate: number };
  margin?: { value: number; accuracyBefore: number; accuracyAfter: number };
}

export type JobRequest = EvaluateRequest | TrainRequest | SanitiseRequest | ExperimentEvalRequest;

export interface JobProgress {
  task: string;
  done: number;
  total: number;
}

export type TrainProgressMessage = Omit<TrainProgress, 'lr'>;

export type JobMessage =
  | { type: 'progress'; progress: JobProgress }
  | { type: 'train-progress'; progress: TrainProgressMessage }
  | { type: 'checkpoint'; path: string; epoch: number; step: number }
  | { type: 'result'; result: unknown }
  /** permanent: the input is at fault (a bad model, dataset or checkpoint), so running again cannot help. */
  | { type: 'error'; message: string; permanent: boolean; code?: string };

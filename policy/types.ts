// The parsed, validated form of `secmlops.yaml`. Workflows receive this object as input, so it holds
// only plain data (no functions, no Dates) and every duration is already in milliseconds.

export const STRIDE = ['S', 'T', 'R', 'I', 'D', 'E'] as const;
export type StrideCategory = (typeof STRIDE)[number];
export const STRIDE_NAMES: Record<StrideCategory, string> = {
  S: 'Spoofing',
  T: 'Tampering',
  R: 'Repudiation',
  I: 'Information disclosure',
  D: 'Denial of service',
  E: 'Elevation of privilege',
};

export const STAGE_NAMES = ['plan', 'data', 'train', 'evaluate', 'release', 'monitor'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export const CHANNELS = ['cli', 'console', 'slack', 'github'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface Person {
  id: string;
  name?: string;
  github?: string;
  slack?: string;
  console?: string;
}

export interface Role {
  id: string;
  name: string;
  members: string[];
}

export interface Approval {
  roles: string[];
  /** Distinct people needed. */
  quorum: number;
  /** When true every listed role is covered by a different approver (two-person rule). */
  everyRole: boolean;
  timeoutMs?: number;
  escalation?: string;
  deadlineMs?: number;
}

export interface Stage {
  name: StageName;
  approval?: Approval;
}

export type GateOp = '>=' | '>' | '<=' | '<' | '==';
export interface Gate {
  id: string;
  metric: string;
  op: GateOp;
  value: number;
}

export interface DatasetFile {
  path: string;
  sha256: string;
}

export interface DatasetSplit {
  images: string;
  labels: string;
}

export interface Dataset {
  /** Absolute, or relative to the policy file's folder (resolved by the loader). */
  root: string;
  classes: number;
  /** The largest decoded size of one IDX file (default 512 MiB in engine/data/idx.ts). */
  maxFileBytes?: number;
  files: DatasetFile[];
  splits: Record<string, DatasetSplit>;
}

export interface Artifacts {
  dataset?: Dataset;
  model?: { path: string; sha256?: string };
}

export interface Asset {
  id: string;
  description?: string;
}

export interface Control {
  id: string;
  description?: string;
  mitigates: { asset: string; stride: StrideCategory[] }[];
}

export interface RiskAcceptance {
  asset: string;
  stride: StrideCategory[];
  role: string;
  reason: string;
}

export interface ThreatModel {
  assets: Asset[];
  controls: Control[];
  acceptances: RiskAcceptance[];
}

export const ATTACK_NAMES = ['fgsm', 'pgd', 'deepfool', 'square'] as const;

export type TriggerCorner = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

/** A BadNets trigger: a square patch of one pixel value (0–255) at a corner or at x,y, mapping to a target class. */
export interface BackdoorConfig {
  target: number;
  patch: number;
  position: TriggerCorner | { x: number; y: number };
  value: number;
}

export const POISON_DETECTORS = ['spectral', 'activation-clustering'] as const;

/**
 * The data stage's poisoning defense: a reference model trained on the split, its penultimate activations, a
 * detector, and a sanitised copy of the split without what it flagged, which the train stage then trains on.
 */
export interface PoisoningConfig {
  split: string;
  method: (typeof POISON_DETECTORS)[number];
  arch: 'small-cnn' | 'wide-cnn' | 'mlp';
  epochs: number;
  /** The expected poison rate: spectral signatures remove 1.5 × this share of every class. */
  rate: number;
  /** More than this share of the split flagged fails the stage (a detector gone wrong must not gut the data). */
  maxRemoval: number;
  seed: number;
}
export type AttackKind = (typeof ATTACK_NAMES)[number];

export interface AttackConfig {
  /** Names the attack in metrics: evaluate.<id>.robust_accuracy. */
  id: string;
  attack: AttackKind;
  eps?: number;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
  norm?: 'linf' | 'l2';
  overshoot?: number;
  maxIter?: number;
  queries?: number;
}

export interface EvaluateConfig {
  /** A split of artifacts.dataset.splits. */
  split: string;
  /** The first N images of the split (all when absent). */
  limit?: number;
  /** The valid input range; adversarial inputs stay inside it. */
  range: [number, number];
  seed: number;
  /** Classes whose per-class miss rate is reported (evaluate.class.<k>.miss_rate). */
  safetyCritical: number[];
  attacks: AttackConfig[];
  /** A BadNets trigger to measure: evaluate.backdoor.success_rate. */
  backdoor?: BackdoorConfig;
  /**
   * Membership inference: `count` images of the `members` split (the training data) against as many of this
   * split, with `count` more of it to calibrate on: evaluate.privacy.mia_auc and evaluate.privacy.mia_advantage.
   */
  privacy?: { members: string; count: number };
  /** Robust accuracy of one attack at several budgets: the accuracy-versus-epsilon curve. */
  curve?: { attack: 'fgsm' | 'pgd'; steps?: number; eps: number[] };
  /** Limits the model must stay within (engine/onnx/limits.ts has the defaults). */
  modelLimits?: ModelLimitsConfig;
  /**
   * Split the attack suite across this many parallel gpu activities by image ranges, merged exactly (default 1).
   * Parts start on 256-image boundaries, so a set of N images has at most ceil(N/256) non-empty parts. `auto`: as
   * many parts as gpu workers poll the gpu queue when the stage starts (at most 64).
   */
  shards?: number | 'auto';
}

export const MODEL_LIMIT_KEYS = [
  'maxBytes',
  'maxTensorBytes',
  'maxTotalTensorBytes',
  'maxNodes',
  'maxInitializers',
  'maxGraphDepth',
  'maxMessages',
  'maxValues',
] as const;
export type ModelLimitsConfig = Partial<Record<(typeof MODEL_LIMIT_KEYS)[number], number>>;

export interface TrainConfig {
  /** A split of artifacts.dataset.splits (default train). */
  split: string;
  arch: 'small-cnn' | 'wide-cnn' | 'mlp';
  /** stepSize: the attack's step (default 1.25·eps for fgsm-rs, 2.5·eps/steps for pgd and trades). */
  defense:
    | { kind: 'none' }
    | { kind: 'fgsm-rs'; eps: number; stepSize?: number }
    | { kind: 'pgd'; eps: number; steps?: number; stepSize?: number }
    | { kind: 'trades'; eps: number; steps?: number; beta?: number; stepSize?: number }
    /** DP-SGD: Poisson sampling at sampleRate (batch is unused), per-example clipping to clip, noise σ·clip. */
    | { kind: 'dp-sgd'; noiseMultiplier: number; clip: number; sampleRate: number; delta: number };
  epochs: number;
  batch: number;
  lr: number;
  optimizer: 'adam' | 'sgd';
  schedule: 'constant' | 'cosine' | 'one-cycle';
  weightDecay: number;
  /** Keep the epoch with the best robust validation accuracy (needs a defense's eps). */
  earlyStop: boolean;
  limit?: number;
  seed: number;
  range: [number, number];
  checkpointEvery: number;
  /** How long a silent training worker is trusted before the retry resumes elsewhere (ms; the parser fills in 60 s). */
  heartbeatTimeoutMs?: number;
  /** Data augmentation: CutMix (Yun et al. 2019), λ ~ Beta(alpha, alpha), applied to a batch with probability prob. */
  augment?: { cutmix?: { alpha: number; prob: number } };
  /**
   * Distillation (Hinton et al. 2015) from a pinned teacher model at `temperature`, `alpha` on the soft term; without
   * a teacher, training at temperature T (defensive distillation's first network; alpha 1).
   */
  distill?: { temperature: number; alpha: number; teacher?: { path: string; sha256: string } };
  /** Federated averaging across client workers instead of training on one worker (see FederatedConfig). */
  federated?: FederatedConfig;
}

/**
 * FedAvg (McMahan et al. 2017): each round, every client trains `localEpochs` from the global model on its own
 * part of the split and the server averages the updates weighted by sample count. Clients are workers polling
 * their own task queue (the client's id); each signs its updates with its own key, pinned here.
 */
export interface FederatedConfig {
  clients: { id: string; publicKey: string }[];
  rounds: number;
  localEpochs: number;
  /** A round completes with at least this many clients' updates (default: all). */
  quorum: number;
  partition: { kind: 'iid' } | { kind: 'dirichlet'; alpha: number };
  /** Pairwise-masked updates (Bonawitz et al. 2017): the server sees only their sum. */
  secureAggregation: boolean;
  /** How long a round waits for a client (ms). */
  roundTimeoutMs: number;
  /** The server workflow continues as new after this many rounds. */
  roundsPerRun: number;
  /**
   * DP-FedAvg (McMahan et al. 2018): each client's change clipped to L2 norm `clip`, Gaussian noise of standard
   * deviation noiseMultiplier·clip added to the sum, averaged over the fixed K; ε reported at `delta`.
   */
  dp?: { clip: number; noiseMultiplier: number; delta: number };
}

export interface Policy {
  version: 1;
  name: string;
  /** Where the policy came from, for messages. */
  file: string;
  people: Person[];
  roles: Role[];
  stages: Stage[];
  gates: Gate[];
  artifacts: Artifacts;
  /** The data stage's optional defenses. */
  data?: { poisoning?: PoisoningConfig };
  train?: TrainConfig;
  evaluate?: EvaluateConfig;
  threatModel: ThreatModel;
  /** Ed25519 public keys, base64 of the raw 32 bytes, one per channel that may sign decisions. */
  channels: Partial<Record<Channel, { publicKey: string }>>;
  release?: { publicKey?: string };
  /** Where waiting approvals and escalations are announced (Slack messages with Approve and Reject buttons). */
  notifications?: { slack?: { channel: string } };
  /** The monitor stage's windows, thresholds and the served model's input guard. */
  monitor?: MonitorConfig;
}

/** Feature squeezing (Xu et al. 2018) on the guarded server, calibrated on clean held-out images. */
export interface DetectorConfig {
  /** Bit depth to squeeze to (1–7) and the median filter's window (1: none). */
  bits: number;
  median: number;
  /** The false-positive rate the threshold is calibrated for on clean images. */
  fpr: number;
  /** Answer flagged inputs with a flag, or refuse them. */
  action: 'flag' | 'refuse';
  /** Clean held-out images to calibrate on: the last `count` images of this split. */
  calibration: { split: string; count: number };
}

export interface MonitorConfig {
  /** Window length in ms. */
  windowMs: number;
  /** A window with fewer inputs is recorded but not judged for drift. */
  minInputs: number;
  /** This many unjudged windows in a row open a 'quiet' incident (0: never): a monitor watching no traffic. */
  quietWindows: number;
  /**
   * A statistic drifts when its population stability index reaches `psi` and its two-sample Kolmogorov–Smirnov
   * p-value is below `ksPValue` (both must agree, which keeps false alarms rare on small windows).
   */
  drift: { psi: number; ksPValue: number };
  /** The detector's flag rate above which a window breaches (default: three times its calibrated FPR). */
  flagRate?: number;
  detector?: DetectorConfig;
  /** Windows per workflow run before it continues as new, keeping its history small. */
  windowsPerRun: number;
  /** Telemetry files: rotate at this size, keep this many; raw inputs only when allowed. */
  telemetry: { maxFileBytes: number; files: number; rawInputs: boolean };
}

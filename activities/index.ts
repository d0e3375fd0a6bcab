import { dirname, join } from 'node:path';
import { validateDataset, type ValidateInput } from './dataset.js';
import { evaluateModel, type EvaluateInput } from './evaluate.js';
import { evaluateShard, mergeEvaluation, type MergeInput, type ShardInput } from './evaluate-shards.js';
import { sanitiseDataset, type SanitiseInput } from './sanitise.js';
import { trainModel, type TrainInput } from './train.js';
import { hashDatasetFiles, type ManifestInput } from './manifest.js';
import { signRelease, type ReleaseRequest } from './release.js';
import { openArtifactStore, type ArtifactStore } from './store.js';
import { reportToGitHub, type GitHubReport } from './github.js';
import type { GitHubCredentials } from '../github/credentials.js';
import { notifyIncident, notifySlack, type IncidentNotice, type SlackCredentials, type SlackNotice } from './slack.js';
import { checkRollback, monitorWindow, servedShape, type RollbackRequest, type WindowRequest } from './monitor.js';
import { evidenceSigner } from './evidence.js';
import { countGpuWorkers } from './gpu-workers.js';
import { resolveStart, type GitHubStartResolver } from './start.js';
import { readGitHubDecision, type CommentDecisionRequest } from './github-decision.js';
import type { PipelineInput } from '../policy/index.js';
import type { TrustConfig } from '../worker/trust.js';
import { aggregateRound, beginFederation, type AggregateInput } from './federated-server.js';
import { clientTrain, type ClientIdentity, type ClientRoundInput, type ClientTrust } from './federated-client.js';
import { clientMask, clientShare, clientUnmask, type SecureInput } from './federated-secure.js';
import type { SignedFederationStart } from './federated-start.js';
import { experimentEvaluate, experimentModel, type EvaluateCellRequest, type ModelRequest } from './experiment.js';

export interface ActivityConfig {
  /** Folder of the content-addressed artifact store, or its local cache when `artifacts` names a bucket. */
  artifactsDir: string;
  /** `s3://bucket/prefix` to share artifacts between hosts (default: SECMLOPS_ARTIFACTS, else the folder). */
  artifacts?: string;
  /** PKCS#8 PEM Ed25519 key that signs release attestations. */
  releaseKeyPath: string;
  /** What this worker trusts: its evidence key, policy source, start keys, OIDC issuer (see worker/trust.ts). */
  trust: TrustConfig;
  /** The worker's GitHub credentials for final statuses and PR comments (none: such reports fail, named). */
  github?: GitHubCredentials;
  /** Confirms GitHub Actions OIDC starts (none: GitHub starts are refused). */
  githubStarts?: GitHubStartResolver;
  /** The worker's Slack bot token for approval messages (none: such notices fail, named). */
  slack?: SlackCredentials;
  /** Where the guarded server writes its telemetry, which the monitor stage reads (default <home>/telemetry). */
  telemetryDir?: string;
}

function storeOf(config: { artifactsDir: string; artifacts?: string }): ArtifactStore {
  return openArtifactStore({
    location: config.artifacts ?? process.env.SECMLOPS_ARTIFACTS,
    localDir: config.artifactsDir,
  });
}

/** What every activity of a worker shares: the artifact store, the evidence signer, the telemetry folder. */
function common(config: ActivityConfig) {
  return {
    store: storeOf(config),
    signer: evidenceSigner(config.trust.evidenceKeyPath),
    home: dirname(config.artifactsDir),
  };
}

/** The cpu queue's activities (the pipeline's own task queue): starts, hashing, signing, channels, monitoring. */
export function createCpuActivities(config: ActivityConfig) {
  const { store, signer, home } = common(config);
  const telemetryDir = config.telemetryDir ?? process.env.SECMLOPS_TELEMETRY ?? join(home, 'telemetry');
  return {
    resolveStart: (input: PipelineInput) => resolveStart(config.trust, signer, config.githubStarts, input),
    hashDatasetFiles: (input: ManifestInput) => hashDatasetFiles(signer, input),
    signRelease: (req: ReleaseRequest) => signRelease(store, config.releaseKeyPath, signer, req),
    reportToGitHub: (r: GitHubReport) => reportToGitHub(config.github, signer, r),
    readGitHubDecision: (r: CommentDecisionRequest) =>
      readGitHubDecision(config.github, config.trust.githubChannelKeyPath, signer, r),
    notifySlack: (n: SlackNotice) => notifySlack(config.slack, signer, n),
    notifyIncident: (n: IncidentNotice) => notifyIncident(config.slack, signer, n),
    monitorWindow: (req: WindowRequest) => monitorWindow(store, telemetryDir, req),
    checkRollback: (req: RollbackRequest) => checkRollback(store, config.releaseKeyPath, req),
    servedShape: (req: { modelSha256: string }) => servedShape(store, req.modelSha256),
    countGpuWorkers,
  };
}

/** The gpu queue's activities: everything that runs the engine (data checks, training, evaluation, FedAvg). */
export function createGpuActivities(config: ActivityConfig) {
  const { store, signer, home } = common(config);
  return {
    validateDataset: (input: ValidateInput) => validateDataset(signer, input),
    sanitiseDataset: (input: SanitiseInput) => sanitiseDataset(store, signer, input),
    evaluateModel: (input: EvaluateInput) => evaluateModel(store, signer, input),
    evaluateShard: (input: ShardInput) => evaluateShard(store, signer, input),
    mergeEvaluation: (input: MergeInput) => mergeEvaluation(store, signer, input),
    trainModel: (input: TrainInput) => trainModel(store, signer, input),
    experimentModel: (req: ModelRequest) => experimentModel(store, join(home, 'experiment-cache'), req),
    experimentEvaluate: (req: EvaluateCellRequest) => experimentEvaluate(store, req),
    beginFederation: (req: { policy: string; start: SignedFederationStart }) =>
      beginFederation(config.trust, store, req),
    aggregateRound: (req: AggregateInput) => aggregateRound(config.trust, store, join(home, 'federations'), req),
  };
}

export type CpuActivities = ReturnType<typeof createCpuActivities>;
export type GpuActivities = ReturnType<typeof createGpuActivities>;

/** Both queues' activities together: for tests and tools that play a rogue worker; workflows proxy one queue's. */
export type Activities = CpuActivities & GpuActivities;

export function createActivities(config: ActivityConfig): Activities {
  return { ...createCpuActivities(config), ...createGpuActivities(config) };
}

/** A federated client's activities, registered on the task queue named by its id (`secmlops worker --queues ID`). */
export function createClientActivities(config: {
  artifactsDir: string;
  artifacts?: string;
  trust: ClientTrust;
  client: ClientIdentity;
}) {
  const store = storeOf(config);
  return {
    clientTrain: (input: ClientRoundInput) => clientTrain(config.client, config.trust, store, input),
    clientShare: (input: SecureInput) => clientShare(config.client, config.trust, store, input),
    clientMask: (input: SecureInput) => clientMask(config.client, config.trust, store, input),
    clientUnmask: (input: SecureInput) => clientUnmask(config.client, config.trust, store, input),
  };
}

export type ClientActivities = ReturnType<typeof createClientActivities>;

import { validateDataset } from './dataset.js';
import { evaluateModel, type EvaluateInput } from './evaluate.js';
import { trainModel, type TrainInput } from './train.js';
import { hashDatasetFiles } from './manifest.js';
import { signRelease, type ReleaseRequest } from './release.js';
import { ArtifactStore } from './store.js';
import { reportToGitHub, type GitHubReport } from './github.js';
import type { GitHubCredentials } from '../github/credentials.js';
import { notifySlack, type SlackCredentials, type SlackNotice } from './slack.js';

export interface ActivityConfig {
  /** Folder of the content-addressed artifact store. */
  artifactsDir: string;
  /** PKCS#8 PEM Ed25519 key that signs release attestations. */
  releaseKeyPath: string;
  /** The worker's GitHub credentials for final statuses and PR comments (none: such reports fail, named). */
  github?: GitHubCredentials;
  /** The worker's Slack bot token for approval messages (none: such notices fail, named). */
  slack?: SlackCredentials;
}

/** The activities a worker registers; workflows import only their type. */
export function createActivities(config: ActivityConfig) {
  const store = new ArtifactStore(config.artifactsDir);
  return {
    hashDatasetFiles,
    validateDataset,
    signRelease: (req: ReleaseRequest) => signRelease(store, config.releaseKeyPath, req),
    evaluateModel: (input: EvaluateInput) => evaluateModel(store, input),
    trainModel: (input: TrainInput) => trainModel(store, input),
    reportToGitHub: (r: GitHubReport) => reportToGitHub(config.github, r),
    notifySlack: (n: SlackNotice) => notifySlack(config.slack, n),
  };
}

export type Activities = ReturnType<typeof createActivities>;

// The monitor stage's state and messages, shared by its workflow, the guarded server, the CLI and the console.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { WindowMeasurement } from '../activities/monitor.js';
import type {
  AuditEntry,
  DriftReference,
  Evidence,
  IncidentResolution,
  Policy,
  SignedDecision,
  Vote,
} from '../policy/index.js';

/** drift, integrity and detector from a window; monitoring when windows cannot be measured; quiet when no traffic. */
export type IncidentKind = 'drift' | 'integrity' | 'detector' | 'monitoring' | 'quiet';

export interface Incident {
  id: number;
  kind: IncidentKind;
  openedAt: string;
  /** The window that opened it. */
  window: number;
  detail: string;
  /** The model served when it opened: decisions are bound to it. */
  modelSha256: string;
  state: 'open' | 'deciding' | 'resolved' | 'dismissed';
  resolution?: IncidentResolution;
  decidedBy?: string;
  votes: Vote[];
  /** The pipeline a retrain started. */
  retrain?: string;
  /** Whether the incident responder was told in Slack, or why not. */
  notice?: { posted: boolean; error?: string };
}

/** What the guarded server should serve: the release, and the decision that chose it when it is a rollback. */
export interface Serving {
  attestation: string;
  modelSha256: string;
  since: string;
  pipeline: string;
  /** One example's input dimensions (e.g. 1×28×28), when known: a rollback target must take the same. */
  shape?: string;
  decision?: SignedDecision;
}

export interface WindowReport extends WindowMeasurement {
  index: number;
}

export interface MonitorInput {
  pipelineId: string;
  policy: Policy;
  policyDigest: string;
  /** The pipeline's start evidence: Slack notices name only what a worker confirmed; a retrain is proven by it. */
  start?: Evidence<'start'>;
  release: { attestation: string; modelSha256: string };
  reference: DriftReference;
  /** State carried across continue-as-new. */
  carried?: MonitorState;
}

export interface MonitorState {
  windows: WindowReport[];
  windowCount: number;
  incidents: Incident[];
  serving: Serving;
  audit: AuditEntry[];
  /** The audit chain's head (the first entry follows the genesis of the monitor's workflow ID). */
  head: string;
  refusalsNotStored: number;
  /** Runs before this one (continue-as-new). */
  runs: number;
  /** Incidents ever opened (the list keeps the open ones and the last 100). */
  incidentCount: number;
  /** Windows in a row that could not be measured, and that had too few inputs to judge. */
  failedWindows: number;
  quietWindows: number;
}

export interface MonitorStatus extends MonitorState {
  workflowId: string;
  pipelineId: string;
  windowMs: number;
}

export interface IncidentAccepted {
  incident: number;
  outcome: 'resolved' | 'dismissed';
  serving: Serving;
}

export const monitorQuery = defineQuery<MonitorStatus>('monitor');
export const resolveIncidentUpdate = defineUpdate<IncidentAccepted, [SignedDecision]>('resolveIncident');

/** The windows a status keeps: older ones are summarised by windowCount. */
export const WINDOWS_KEPT = 50;

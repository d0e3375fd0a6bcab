// Workflows a rogue worker runs on its own task queue: anyone who reaches the namespace can poll a queue of their
// choosing and schedule any activity the real workers register, with any input. The tests use them to check that
// the activities holding the workers' keys believe only what is signed.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';

const real = proxyActivities<Activities>({
  taskQueue: 'secmlops',
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 1 },
});

/** What the activity answered: 'ok' or the innermost error message. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return 'ok';
  } catch (e) {
    let err: unknown = e;
    while (err instanceof Error && err.cause instanceof Error) err = err.cause;
    return err instanceof Error ? err.message : String(err);
  }
}

export async function rogueCommentDecision(req: Parameters<Activities['readGitHubDecision']>[0]): Promise<string> {
  return outcome(() => real.readGitHubDecision(req));
}

export async function rogueReport(req: Parameters<Activities['reportToGitHub']>[0]): Promise<string> {
  return outcome(() => real.reportToGitHub(req));
}

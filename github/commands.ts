// The PR-comment commands SecMLOps reads: `/secmlops approve <stage> [comment]`, `/secmlops reject <stage> <reason>`.
// The approve action parses a comment to answer early; the worker parses the comment it fetched itself, and only
// that parse becomes a decision.
import { STAGE_NAMES } from '../policy/index.js';

export const USAGE = 'usage: `/secmlops approve <stage> [comment]` or `/secmlops reject <stage> <reason>`';

export interface Command {
  decision: 'approve' | 'reject';
  stage: string;
  comment: string;
}

/** The command in a comment, undefined when the comment is not addressed to SecMLOps, or a string saying what is wrong. */
export function parseCommand(body: string): Command | string | undefined {
  const first = body.trim().split(/\r?\n/)[0];
  if (!/^\/secmlops(\s|$)/.test(first)) return undefined;
  const m = /^\/secmlops\s+(approve|reject)\s+(\S+)(?:\s+(.*))?$/.exec(first.trim());
  if (!m) return `I could not read that command; ${USAGE}`;
  const [, decision, stage, text = ''] = m;
  if (!(STAGE_NAMES as readonly string[]).includes(stage))
    return `"${stage}" is not a stage (${STAGE_NAMES.join(', ')}); ${USAGE}`;
  if (decision === 'reject' && !text.trim()) return `a rejection needs a reason; ${USAGE}`;
  return { decision: decision as Command['decision'], stage, comment: text.trim().slice(0, 1000) };
}

/** Comment authors whose association lets them decide. */
export const TRUSTED_ASSOCIATIONS = ['OWNER', 'MEMBER', 'COLLABORATOR'];

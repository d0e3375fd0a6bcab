// The parts of GitHub's webhook payloads the actions read, checked as they are read: a payload without them is
// refused by name rather than half-used.
import type { Subject } from '../../workflows/messages.js';

type Json = Record<string, unknown>;

function field<T>(obj: unknown, path: string, check: (v: unknown) => v is T, what: string): T {
  let v: unknown = obj;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Json)[k] : undefined;
  if (!check(v))
    throw new Error(`the event payload's ${path} should be ${what}, got ${JSON.stringify(v) ?? 'nothing'}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

export const PR_ACTIONS = ['opened', 'synchronize', 'reopened'];

/** The pipeline's subject from a pull_request event. */
export function subjectFromPullRequest(
  eventName: string,
  event: Json,
  url: (id: string) => string | undefined = () => undefined,
): Subject & { pr: number } {
  if (eventName !== 'pull_request' && eventName !== 'pull_request_target')
    throw new Error(`the start action runs on pull_request events, not ${eventName || 'an unnamed event'}`);
  const subject = {
    repo: field(event, 'repository.full_name', isString, 'owner/name'),
    pr: field(event, 'pull_request.number', isNumber, 'a PR number'),
    headSha: field(event, 'pull_request.head.sha', isString, 'a commit SHA'),
    author: field(event, 'pull_request.user.login', isString, 'a login'),
    title:
      typeof (event.pull_request as Json).title === 'string'
        ? ((event.pull_request as Json).title as string)
        : undefined,
    source: 'github' as const,
  };
  const link = url(subject.repo);
  return link ? { ...subject, url: link } : subject;
}

export interface CommentEvent {
  action: string;
  repo: string;
  issue: number;
  isPullRequest: boolean;
  /** The PR's author, never allowed to approve it. */
  issueAuthor: string;
  comment: { id: number; body: string; login: string; userType: string; association: string };
}

export function commentFromEvent(eventName: string, event: Json): CommentEvent {
  if (eventName !== 'issue_comment')
    throw new Error(`the approve action runs on issue_comment events, not ${eventName || 'an unnamed event'}`);
  const issue = event.issue as Json | undefined;
  return {
    action: field(event, 'action', isString, 'created, edited or deleted'),
    repo: field(event, 'repository.full_name', isString, 'owner/name'),
    issue: field(event, 'issue.number', isNumber, 'an issue number'),
    isPullRequest: !!issue && typeof issue.pull_request === 'object' && issue.pull_request !== null,
    issueAuthor: field(event, 'issue.user.login', isString, 'a login'),
    comment: {
      id: field(event, 'comment.id', isNumber, 'a comment id'),
      body: field(event, 'comment.body', (v): v is string => typeof v === 'string', 'text'),
      login: field(event, 'comment.user.login', isString, 'a login'),
      userType: field(event, 'comment.user.type', isString, 'User or Bot'),
      association: field(event, 'comment.author_association', isString, 'an author association'),
    },
  };
}

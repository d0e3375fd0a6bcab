// The few GitHub REST endpoints SecMLOps uses (commit statuses, issue comments, reactions), over fetch. The base URL
// is GITHUB_API_URL where set (GitHub Enterprise, or a local stand-in in tests).

export interface Repo {
  owner: string;
  repo: string;
}

export interface IssueComment {
  id: number;
  body: string;
  user?: { login: string; type?: string };
  created_at?: string;
  updated_at?: string;
  author_association?: string;
  /** https://api.github.com/repos/OWNER/REPO/issues/NUMBER */
  issue_url?: string;
}

export interface PullRequest {
  number: number;
  title?: string;
  user: { login: string };
  head: { sha: string };
  base: { sha: string; ref?: string };
}

/** Files read from a repository through the API stay small: policies and public keys. */
export const MAX_CONTENT_BYTES = 1 << 20;

export type StatusState = 'pending' | 'success' | 'failure' | 'error';

export class GitHubError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'GitHubError';
  }
}

export function apiBase(env: NodeJS.ProcessEnv = process.env): string {
  return (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
}

/** "owner/name" → { owner, repo }, refusing anything else. */
export function parseRepo(full: string): Repo {
  const m = /^([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+)$/.exec(full);
  if (!m) throw new Error(`"${full}" is not a GitHub repository name (owner/name)`);
  return { owner: m[1], repo: m[2] };
}

export class GitHubApi {
  constructor(
    private readonly token: string,
    private readonly base = apiBase(),
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${this.token}`,
        'x-github-api-version': '2022-11-28',
        'user-agent': 'secmlops',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        detail = (JSON.parse(text) as { message?: string }).message ?? detail;
      } catch {
        // Not JSON: keep the text.
      }
      throw new GitHubError(`GitHub ${method} ${path} answered ${res.status}: ${detail}`, res.status);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  setStatus(
    r: Repo,
    sha: string,
    s: { state: StatusState; description: string; targetUrl?: string; context?: string },
  ): Promise<unknown> {
    // GitHub refuses descriptions over 140 characters.
    const description = s.description.length > 140 ? `${s.description.slice(0, 139)}…` : s.description;
    return this.request('POST', `/repos/${r.owner}/${r.repo}/statuses/${sha}`, {
      state: s.state,
      description,
      context: s.context ?? 'secmlops',
      ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
    });
  }

  async listComments(r: Repo, issue: number): Promise<IssueComment[]> {
    const all: IssueComment[] = [];
    for (let page = 1; ; page++) {
      const batch = await this.request<IssueComment[]>(
        'GET',
        `/repos/${r.owner}/${r.repo}/issues/${issue}/comments?per_page=100&page=${page}`,
      );
      all.push(...batch);
      if (batch.length < 100) return all;
    }
  }

  createComment(r: Repo, issue: number, body: string): Promise<IssueComment> {
    return this.request('POST', `/repos/${r.owner}/${r.repo}/issues/${issue}/comments`, { body });
  }

  updateComment(r: Repo, id: number, body: string): Promise<IssueComment> {
    return this.request('PATCH', `/repos/${r.owner}/${r.repo}/issues/comments/${id}`, { body });
  }

  getComment(r: Repo, id: number): Promise<IssueComment> {
    return this.request('GET', `/repos/${r.owner}/${r.repo}/issues/comments/${id}`);
  }

  async defaultBranch(r: Repo): Promise<string> {
    return (await this.request<{ default_branch: string }>('GET', `/repos/${r.owner}/${r.repo}`)).default_branch;
  }

  async branchHead(r: Repo, branch: string): Promise<string> {
    return (
      await this.request<{ commit: { sha: string } }>(
        'GET',
        `/repos/${r.owner}/${r.repo}/branches/${encodeURIComponent(branch)}`,
      )
    ).commit.sha;
  }

  getPull(r: Repo, n: number): Promise<PullRequest> {
    return this.request('GET', `/repos/${r.owner}/${r.repo}/pulls/${n}`);
  }

  /** A file's text at a commit (the contents API), refusing directories, symlinks and anything over the limit. */
  async getFileText(r: Repo, path: string, ref: string): Promise<string> {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    const f = await this.request<{ type?: string; encoding?: string; content?: string; size?: number }>(
      'GET',
      `/repos/${r.owner}/${r.repo}/contents/${encoded}?ref=${encodeURIComponent(ref)}`,
    );
    if (!f || Array.isArray(f) || f.type !== 'file') throw new GitHubError(`${path} at ${ref} is not a file`, 422);
    if ((f.size ?? 0) > MAX_CONTENT_BYTES)
      throw new GitHubError(`${path} at ${ref} is ${f.size} bytes, over the ${MAX_CONTENT_BYTES}-byte limit`, 422);
    if (f.encoding !== 'base64' || typeof f.content !== 'string')
      throw new GitHubError(`${path} at ${ref}: unexpected encoding ${String(f.encoding)}`, 422);
    const bytes = Buffer.from(f.content, 'base64');
    if (bytes.length > MAX_CONTENT_BYTES)
      throw new GitHubError(`${path} at ${ref} is over the ${MAX_CONTENT_BYTES}-byte limit`, 422);
    return bytes.toString('utf8');
  }

  react(r: Repo, commentId: number, content: '+1' | '-1' | 'confused' | 'eyes'): Promise<unknown> {
    return this.request('POST', `/repos/${r.owner}/${r.repo}/issues/comments/${commentId}/reactions`, { content });
  }

  /**
   * Writes the PR's one comment that starts with `marker`, updating it if it exists. Anyone can post the marker, so a
   * marked comment this token may not edit (someone else's) is passed over rather than failing the report.
   */
  async upsertComment(r: Repo, issue: number, marker: string, body: string): Promise<{ id: number; created: boolean }> {
    const text = `${marker}\n${body}`;
    const marked = (await this.listComments(r, issue)).filter((c) => c.body.startsWith(marker)).reverse();
    for (const c of marked) {
      try {
        return { id: (await this.updateComment(r, c.id, text)).id, created: false };
      } catch (e) {
        if (!(e instanceof GitHubError) || (e.status !== 403 && e.status !== 404)) throw e;
      }
    }
    return { id: (await this.createComment(r, issue, text)).id, created: true };
  }
}

// A local HTTP server speaking the GitHub REST endpoints SecMLOps uses, as documented: commit statuses, issue
// comments (list, create, read, update), comment reactions, pull requests, repository contents and GitHub App
// installation tokens. It checks the bearer token (and an App JWT's RS256 signature) and keeps what it was sent, for
// assertions. It is also the Actions OIDC issuer a job asks for ID tokens (ACTIONS_ID_TOKEN_REQUEST_URL), with its
// JWKS, as GitHub documents them: RS256 tokens whose claims the test sets.
import { createSign, createVerify, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredComment {
  id: number;
  body: string;
  user: { login: string; type: string };
  issue: number;
  repo: string;
  created_at: string;
  updated_at: string;
  author_association: string;
}

export interface StoredPull {
  number: number;
  title?: string;
  user: { login: string };
  head: { sha: string };
  base: { sha: string; ref: string };
}

/** What the issuer puts in the next ID tokens it mints (plus iss, aud, iat, nbf, exp and a fresh jti). */
export interface OidcClaimsToMint {
  repository: string;
  ref: string;
  sha: string;
  event_name: string;
  [k: string]: unknown;
}

export interface GitHubStandIn {
  url: string;
  statuses: {
    repo: string;
    sha: string;
    state: string;
    description: string;
    context: string;
    target_url?: string;
    token: string;
  }[];
  comments: StoredComment[];
  reactions: { repo: string; comment: number; content: string }[];
  /** Every request, as "METHOD path". */
  log: string[];
  /** Tokens it accepts; an App installation token is added when issued. */
  tokens: Set<string>;
  /** Pull requests by "owner/name#number", and file texts by "owner/name@sha:path", as the test sets them. */
  pulls: Map<string, StoredPull>;
  files: Map<string, string>;
  /** Branch heads by "owner/name:branch"; every repository's default branch is main. */
  branches: Map<string, string>;
  /** A comment a person wrote on a PR, as GitHub stores it; returns it (its id goes into the webhook payload). */
  addComment: (c: {
    repo: string;
    issue: number;
    login: string;
    body: string;
    association?: string;
    type?: string;
    createdAt?: string;
    updatedAt?: string;
  }) => StoredComment;
  /** The Actions OIDC issuer: its URL (`iss`), JWKS URL, the token-request URL and bearer a job uses, and claims. */
  oidc: {
    issuer: string;
    jwksUrl: string;
    requestUrl: string;
    requestToken: string;
    claims: OidcClaimsToMint;
    minted: string[];
  };
  close: () => Promise<void>;
}

export async function startGitHubStandIn(opts: {
  tokens: string[];
  app?: { id: string; installation: string; publicKeyPem: string };
  botLogin?: string;
}): Promise<GitHubStandIn> {
  let nextId = 1000;
  const oidcKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const requestToken = `oidc-request-${randomUUID()}`;
  let base = '';
  const state: Omit<GitHubStandIn, 'url' | 'close' | 'addComment' | 'oidc'> & {
    oidc: Pick<GitHubStandIn['oidc'], 'claims' | 'minted'>;
  } = {
    statuses: [],
    comments: [],
    reactions: [],
    log: [],
    tokens: new Set(opts.tokens),
    pulls: new Map(),
    files: new Map(),
    branches: new Map(),
    oidc: {
      claims: { repository: 'acme/vision', ref: 'refs/pull/1/merge', sha: '0'.repeat(40), event_name: 'pull_request' },
      minted: [],
    },
  };
  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const addComment: GitHubStandIn['addComment'] = (c) => {
    const created = c.createdAt ?? now();
    const stored: StoredComment = {
      id: nextId++,
      body: c.body,
      user: { login: c.login, type: c.type ?? 'User' },
      issue: c.issue,
      repo: c.repo,
      created_at: created,
      updated_at: c.updatedAt ?? created,
      author_association: c.association ?? 'MEMBER',
    };
    state.comments.push(stored);
    return stored;
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const url = new URL(req.url ?? '/', 'http://localhost');
      state.log.push(`${req.method} ${url.pathname}`);
      const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const body = await readJson(req);
      let m: RegExpExecArray | null;
      if (req.method === 'POST' && (m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(url.pathname))) {
        if (!opts.app || m[1] !== opts.app.installation || !auth || !validAppJwt(auth, opts.app))
          return send(401, { message: 'A JSON web token could not be decoded' });
        const token = `ghs_installation${nextId++}`;
        state.tokens.add(token);
        return send(201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString() });
      }
      if (req.method === 'GET' && url.pathname === '/_oidc/.well-known/jwks') {
        return send(200, {
          keys: [{ ...oidcKey.publicKey.export({ format: 'jwk' }), kid: 'standin-1', alg: 'RS256', use: 'sig' }],
        });
      }
      if (req.method === 'GET' && url.pathname === '/_actions/idtoken') {
        if (auth !== requestToken) return send(401, { message: 'Bad credentials' });
        const t = Math.floor(Date.now() / 1000);
        const claims = {
          ...state.oidc.claims,
          iss: `${base}/_oidc`,
          aud: url.searchParams.get('audience') ?? `${base}`,
          iat: t,
          nbf: t - 5,
          exp: t + 300,
          jti: randomUUID(),
          sub: `repo:${state.oidc.claims.repository}:pull_request`,
        };
        const b64 = (x: object) => Buffer.from(JSON.stringify(x)).toString('base64url');
        const unsigned = `${b64({ alg: 'RS256', typ: 'JWT', kid: 'standin-1' })}.${b64(claims)}`;
        const jwt = `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(oidcKey.privateKey).toString('base64url')}`;
        state.oidc.minted.push(jwt);
        return send(200, { value: jwt });
      }
      if (!auth || !state.tokens.has(auth)) return send(401, { message: 'Bad credentials' });
      if (req.method === 'GET' && (m = /^\/repos\/([^/]+\/[^/]+)$/.exec(url.pathname)))
        return send(200, { full_name: m[1], default_branch: 'main' });
      if (req.method === 'GET' && (m = /^\/repos\/([^/]+\/[^/]+)\/branches\/([^/]+)$/.exec(url.pathname))) {
        const sha = state.branches.get(`${m[1]}:${decodeURIComponent(m[2])}`);
        return sha
          ? send(200, { name: decodeURIComponent(m[2]), commit: { sha } })
          : send(404, { message: 'Branch not found' });
      }
      if (req.method === 'GET' && (m = /^\/repos\/([^/]+\/[^/]+)\/pulls\/(\d+)$/.exec(url.pathname))) {
        const pull = state.pulls.get(`${m[1]}#${m[2]}`);
        return pull ? send(200, pull) : send(404, { message: 'Not Found' });
      }
      if (req.method === 'GET' && (m = /^\/repos\/([^/]+\/[^/]+)\/contents\/(.+)$/.exec(url.pathname))) {
        const text = state.files.get(`${m[1]}@${url.searchParams.get('ref') ?? ''}:${decodeURIComponent(m[2])}`);
        if (text === undefined) return send(404, { message: 'Not Found' });
        return send(200, {
          type: 'file',
          encoding: 'base64',
          size: Buffer.byteLength(text),
          content: Buffer.from(text).toString('base64'),
          path: decodeURIComponent(m[2]),
        });
      }
      if (req.method === 'GET' && (m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname))) {
        const c = state.comments.find((x) => x.id === Number(m![2]) && x.repo === m![1]);
        if (!c) return send(404, { message: 'Not Found' });
        return send(200, { ...c, issue_url: `${base}/repos/${c.repo}/issues/${c.issue}` });
      }
      if (req.method === 'POST' && (m = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]+)$/.exec(url.pathname))) {
        const b = body as { state: string; description: string; context: string; target_url?: string };
        if (!['pending', 'success', 'failure', 'error'].includes(b.state))
          return send(422, { message: `invalid state ${b.state}` });
        if ((b.description ?? '').length > 140)
          return send(422, { message: 'description is too long (maximum is 140 characters)' });
        state.statuses.push({ repo: m[1], sha: m[2], ...b, token: auth });
        return send(201, { id: nextId++, ...b });
      }
      if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/comments$/.exec(url.pathname))) {
        const issue = Number(m[2]);
        if (req.method === 'GET') {
          const all = state.comments.filter((c) => c.issue === issue);
          const per = Number(url.searchParams.get('per_page') ?? 30);
          const page = Number(url.searchParams.get('page') ?? 1);
          return send(200, all.slice((page - 1) * per, page * per));
        }
        if (req.method === 'POST') {
          const c = addComment({
            repo: m[1],
            issue,
            login: opts.botLogin ?? 'secmlops[bot]',
            type: 'Bot',
            body: (body as { body: string }).body,
            association: 'NONE',
          });
          return send(201, c);
        }
      }
      if (req.method === 'PATCH' && (m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname))) {
        const c = state.comments.find((x) => x.id === Number(m![2]));
        if (!c) return send(404, { message: 'Not Found' });
        if (c.user.login !== (opts.botLogin ?? 'secmlops[bot]'))
          return send(403, { message: 'Resource not accessible by integration' });
        c.body = (body as { body: string }).body;
        c.updated_at = now();
        return send(200, c);
      }
      if (
        req.method === 'POST' &&
        (m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)\/reactions$/.exec(url.pathname))
      ) {
        const content = (body as { content: string }).content;
        if (!['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes'].includes(content))
          return send(422, { message: `invalid reaction ${content}` });
        state.reactions.push({ repo: m[1], comment: Number(m[2]), content });
        return send(201, { id: nextId++, content });
      }
      return send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
  const oidc = Object.assign(state.oidc, {
    issuer: `${base}/_oidc`,
    jwksUrl: `${base}/_oidc/.well-known/jwks`,
    requestUrl: `${base}/_actions/idtoken?api-version=2.0`,
    requestToken,
  });
  return { url: base, ...state, oidc, addComment, close: () => new Promise((r) => server.close(() => r())) };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : undefined;
}

function validAppJwt(jwt: string, app: { id: string; publicKeyPem: string }): boolean {
  const [h, p, sig] = jwt.split('.');
  if (!h || !p || !sig) return false;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss?: string; iat?: number; exp?: number };
  const now = Date.now() / 1000;
  if (
    header.alg !== 'RS256' ||
    payload.iss !== app.id ||
    !payload.exp ||
    payload.exp < now ||
    payload.exp - (payload.iat ?? 0) > 600
  )
    return false;
  return createVerify('RSA-SHA256').update(`${h}.${p}`).verify(app.publicKeyPem, Buffer.from(sig, 'base64url'));
}

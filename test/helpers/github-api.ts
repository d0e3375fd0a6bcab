// A local HTTP server speaking the GitHub REST endpoints SecMLOps uses, as documented: commit statuses, issue
// comments (list, create, update), comment reactions and GitHub App installation tokens. It checks the bearer token
// (and an App JWT's RS256 signature) and keeps what it was sent, for assertions.
import { createVerify } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredComment {
  id: number;
  body: string;
  user: { login: string; type: string };
  issue: number;
}

export interface GitHubStandIn {
  url: string;
  statuses: { repo: string; sha: string; state: string; description: string; context: string; target_url?: string; token: string }[];
  comments: StoredComment[];
  reactions: { repo: string; comment: number; content: string }[];
  /** Every request, as "METHOD path". */
  log: string[];
  /** Tokens it accepts; an App installation token is added when issued. */
  tokens: Set<string>;
  close: () => Promise<void>;
}

export async function startGitHubStandIn(opts: { tokens: string[]; app?: { id: string; installation: string; publicKeyPem: string }; botLogin?: string }): Promise<GitHubStandIn> {
  let nextId = 1000;
  const state: Omit<GitHubStandIn, 'url' | 'close'> = { statuses: [], comments: [], reactions: [], log: [], tokens: new Set(opts.tokens) };
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
        if (!opts.app || m[1] !== opts.app.installation || !auth || !validAppJwt(auth, opts.app)) return send(401, { message: 'A JSON web token could not be decoded' });
        const token = `ghs_installation${nextId++}`;
        state.tokens.add(token);
        return send(201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString() });
      }
      if (!auth || !state.tokens.has(auth)) return send(401, { message: 'Bad credentials' });
      if (req.method === 'POST' && (m = /^\/repos\/([^/]+\/[^/]+)\/statuses\/([0-9a-f]+)$/.exec(url.pathname))) {
        const b = body as { state: string; description: string; context: string; target_url?: string };
        if (!['pending', 'success', 'failure', 'error'].includes(b.state)) return send(422, { message: `invalid state ${b.state}` });
        if ((b.description ?? '').length > 140) return send(422, { message: 'description is too long (maximum is 140 characters)' });
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
          const c = { id: nextId++, body: (body as { body: string }).body, user: { login: opts.botLogin ?? 'secmlops[bot]', type: 'Bot' }, issue };
          state.comments.push(c);
          return send(201, c);
        }
      }
      if (req.method === 'PATCH' && (m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname))) {
        const c = state.comments.find((x) => x.id === Number(m![2]));
        if (!c) return send(404, { message: 'Not Found' });
        if (c.user.login !== (opts.botLogin ?? 'secmlops[bot]')) return send(403, { message: 'Resource not accessible by integration' });
        c.body = (body as { body: string }).body;
        return send(200, c);
      }
      if (req.method === 'POST' && (m = /^\/repos\/([^/]+\/[^/]+)\/issues\/comments\/(\d+)\/reactions$/.exec(url.pathname))) {
        const content = (body as { content: string }).content;
        if (!['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes'].includes(content)) return send(422, { message: `invalid reaction ${content}` });
        state.reactions.push({ repo: m[1], comment: Number(m[2]), content });
        return send(201, { id: nextId++, content });
      }
      return send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, ...state, close: () => new Promise((r) => server.close(() => r())) };
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
  if (header.alg !== 'RS256' || payload.iss !== app.id || !payload.exp || payload.exp < now || payload.exp - (payload.iat ?? 0) > 600) return false;
  return createVerify('RSA-SHA256').update(`${h}.${p}`).verify(app.publicKeyPem, Buffer.from(sig, 'base64url'));
}

// The approvals console and Slack's interactivity endpoint, on Fastify. It starts and serves whatever else is down:
// pages say what is missing, and a request that fails Slack's signature check gets 401 before anything else runs.
// Decisions are signed with the console's (or Slack's) channel key and sent as the same Updates the CLI sends; the
// workflow's validator still checks every role.
import formbody from '@fastify/formbody';
import cookie from '@fastify/cookie';
import type { Client } from '@temporalio/client';
import { WebClient } from '@slack/web-api';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { DecisionRefused, sendDecision } from '../client/decisions.js';
import type { ConsoleMetrics } from './metrics.js';
import { traceRequests } from './tracing.js';
import type { Tracer } from '@opentelemetry/api';
import type { Policy } from '../policy/index.js';
import { TASK_QUEUE, policyQuery, statusQuery, type PipelineStatus } from '../workflows/messages.js';
import { ourPipeline, withRunningStage } from '../client/pipelines.js';
import { monitorRoutes } from './monitor-routes.js';
import { pendingPage, pipelinePage, signInPage, type PendingItem } from './pages.js';
import { checkSlackRequest, parseSlackAction, type SlackAction } from './slack.js';
import { TokenError, verifyToken, type ConsoleToken } from './tokens.js';
import type { JtiStore } from '../client/once-store.js';

export interface ConsoleOptions {
  /** Connects to Temporal; called again after a failure, so the console recovers when Temporal comes back. */
  connect: () => Promise<Client>;
  /** The operator's public key for sign-in tokens (base64 raw); without it nobody can sign in. */
  tokenPublicKey?: string;
  /** The console channel's private key, which signs console decisions. */
  consoleKey?: KeyObject;
  /** Slack: the signing secret, the slack channel's key, and a bot token (and API URL) to edit messages with. */
  slack?: { signingSecret?: string; key?: KeyObject; botToken?: string; apiUrl?: string };
  /** Set the Secure flag on the session cookie (behind HTTPS). */
  secureCookies?: boolean;
  bodyLimit?: number;
  /**
   * Signed-out sessions and Slack request signatures already seen. On disk (a folder shared by every console
   * process), so a revoked token stays revoked and a replayed Slack request stays refused after a restart.
   */
  state: JtiStore;
  /** Counts requests and accepted decisions for Prometheus (console/metrics.ts); none: nothing is counted. */
  metrics?: ConsoleMetrics;
  /** Traces each request (console/tracing.ts); the client from `connect` should carry the tracing interceptors. */
  tracer?: Tracer;
}

const COOKIE = 'secmlops_session';

export function createConsole(o: ConsoleOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: o.bodyLimit ?? 64 * 1024, logger: false });
  const csrfSecret = randomBytes(32);
  let client: Client | undefined;
  const temporal = async (): Promise<Client> => (client ??= await o.connect());

  if (o.tracer) traceRequests(app, o.tracer);
  if (o.metrics) {
    const requests = o.metrics.requests;
    app.addHook('onResponse', async (req, reply) => {
      // The route's pattern, not the URL: pipeline IDs would make a label per pipeline.
      const route = req.routeOptions.url ?? 'unmatched';
      requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    });
  }

  app.addHook('onSend', async (_req, reply) => {
    reply.header(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    );
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
  });

  // Slack's endpoint reads the raw body (the signature covers its exact bytes), so it lives in its own scope with
  // a string parser; everything else gets parsed forms.
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
      done(null, body),
    );
    scope.post('/slack/interactivity', async (req, reply) => {
      const raw = typeof req.body === 'string' ? req.body : '';
      const secret = o.slack?.signingSecret;
      const why = secret
        ? checkSlackRequest(secret, req.headers, raw)
        : 'SLACK_SIGNING_SECRET is not set on the console';
      if (why) return reply.code(401).send({ error: why });
      // A signed request is accepted once: the same signature again is a replay (kept past the timestamp window).
      const sig = String(req.headers['x-slack-signature']);
      const first = await o.state.claim(`slack:${sig}`, Math.floor(Date.now() / 1000) + 15 * 60).catch(() => false);
      if (!first) return reply.code(401).send({ error: 'this signed request was already received (a replay?)' });
      let action: SlackAction;
      try {
        action = parseSlackAction(raw);
      } catch (e) {
        return reply.code(400).send({ error: (e as Error).message });
      }
      // Slack wants an answer within three seconds; the decision and the message update follow.
      void decideFromSlack(action).catch(() => undefined);
      return reply.code(200).send();
    });
  });

  void app.register(async (scope) => {
    await scope.register(formbody);
    await scope.register(cookie);

    const session = async (req: FastifyRequest): Promise<(ConsoleToken & { csrf: string }) | undefined> => {
      const token = req.cookies[COOKIE];
      if (!token || !o.tokenPublicKey) return undefined;
      try {
        const claims = verifyToken(token, o.tokenPublicKey);
        // A store that cannot answer counts as revoked (fail closed).
        if (await o.state.has(`signout:${claims.jti}`).catch(() => true)) return undefined;
        return { ...claims, csrf: createHmac('sha256', csrfSecret).update(claims.jti).digest('base64url') };
      } catch {
        return undefined;
      }
    };
    const requireSession = async (req: FastifyRequest, reply: FastifyReply) => {
      const s = await session(req);
      if (!s) void reply.redirect('/signin', 303);
      return s;
    };
    const html = (reply: FastifyReply, page: string, code = 200) =>
      reply.code(code).type('text/html; charset=utf-8').send(page);
    const formOf = (req: FastifyRequest) => (req.body ?? {}) as Record<string, string | undefined>;

    scope.get('/signin', async (_req, reply) =>
      html(
        reply,
        signInPage(
          o.tokenPublicKey
            ? undefined
            : 'Sign-in is not configured: the console has no operator public key (SECMLOPS_TOKEN_PUBLIC_KEY or .secmlops/keys/token.pub).',
        ),
      ),
    );
    scope.post('/signin', async (req, reply) => {
      if (!o.tokenPublicKey) return html(reply, signInPage('Sign-in is not configured on this console.'), 503);
      const token = formOf(req).token ?? '';
      try {
        const claims = verifyToken(token, o.tokenPublicKey);
        if (await o.state.has(`signout:${claims.jti}`).catch(() => true)) throw new TokenError('it was signed out');
      } catch (e) {
        return html(
          reply,
          signInPage(e instanceof TokenError ? `That token was refused: ${e.message}.` : 'That token was refused.'),
          401,
        );
      }
      void reply.setCookie(COOKIE, token.trim(), {
        httpOnly: true,
        sameSite: 'strict',
        secure: !!o.secureCookies,
        path: '/',
      });
      return reply.redirect('/', 303);
    });
    scope.post('/signout', async (req, reply) => {
      const s = await session(req);
      if (s && formOf(req).csrf === s.csrf) await o.state.claim(`signout:${s.jti}`, s.exp);
      void reply.clearCookie(COOKIE, { path: '/' });
      return reply.redirect('/signin', 303);
    });

    scope.get('/', async (req, reply) => {
      const s = await requireSession(req, reply);
      if (!s) return reply;
      let items: PendingItem[] = [];
      let others = 0;
      let problem: string | undefined;
      let myRoles = new Set<string>();
      try {
        const c = await temporal();
        // Only pipelines on our workers' task queue: a namespace user can run a look-alike on a queue they poll.
        for await (const wf of c.workflow.list({
          query: `WorkflowType = 'secmlopsPipeline' AND TaskQueue = '${TASK_QUEUE}' AND ExecutionStatus = 'Running'`,
        })) {
          // One pipeline that cannot be read (not resolved yet, or showing a malformed report) does not hide the rest.
          try {
            const h = c.workflow.getHandle(wf.workflowId);
            const [status, policy] = await Promise.all([
              (h.query(statusQuery) as Promise<PipelineStatus>).then((st) => withRunningStage(c.workflow, st)),
              h.query(policyQuery),
            ]);
            const roles = rolesOf(policy, s.person);
            roles.forEach((r) => myRoles.add(r));
            for (const stage of status.stages.filter((st) => st.state === 'waiting' && st.approval)) {
              if (stage.approval!.roles.some((r) => roles.includes(r)))
                items.push({
                  workflowId: status.workflowId,
                  policyName: status.policyName,
                  subject: describeSubject(status),
                  stage,
                });
              else others++;
            }
          } catch {
            others++;
          }
          if (items.length + others > 500) break;
        }
      } catch (e) {
        client = undefined;
        problem = `Temporal is unreachable, so pending approvals cannot be listed: ${(e as Error).message}`;
        items = [];
        myRoles = new Set();
      }
      return html(
        reply,
        pendingPage({ person: s.person, roles: [...myRoles].sort(), csrf: s.csrf }, items, problem, others),
      );
    });

    const showPipeline = async (
      reply: FastifyReply,
      s: ConsoleToken & { csrf: string },
      id: string,
      flash?: { ok: boolean; text: string },
      code = 200,
    ) => {
      try {
        await ourPipeline(await temporal(), id);
        const c = await temporal();
        const h = c.workflow.getHandle(id);
        const [status, policy] = await Promise.all([
          (h.query(statusQuery) as Promise<PipelineStatus>).then((st) => withRunningStage(c.workflow, st)),
          h.query(policyQuery),
        ]);
        return html(
          reply,
          pipelinePage(status, { person: s.person, roles: rolesOf(policy, s.person), csrf: s.csrf }, flash),
          code,
        );
      } catch (e) {
        return html(
          reply,
          pendingPage(
            { person: s.person, roles: [], csrf: s.csrf },
            [],
            `Pipeline ${id} cannot be shown: ${(e as Error).message}`,
          ),
          404,
        );
      }
    };

    monitorRoutes(scope, { temporal, requireSession, session, formOf, html, consoleKey: o.consoleKey });

    scope.get<{ Params: { id: string } }>('/pipelines/:id', async (req, reply) => {
      const s = await requireSession(req, reply);
      if (!s) return reply;
      return showPipeline(reply, s, req.params.id);
    });

    scope.post<{ Params: { id: string; stage: string } }>(
      '/pipelines/:id/stages/:stage/decision',
      async (req, reply) => {
        const s = await session(req);
        const form = formOf(req);
        // Without a session or with a missing or wrong CSRF token nothing is sent.
        if (!s || !form.csrf || form.csrf !== s.csrf)
          return reply.code(403).type('text/plain').send('refused: no valid session or CSRF token');
        const decision = form.decision;
        if (decision !== 'approve' && decision !== 'reject')
          return reply.code(400).type('text/plain').send('decision must be approve or reject');
        if (!o.consoleKey)
          return showPipeline(
            reply,
            s,
            req.params.id,
            { ok: false, text: 'This console has no console channel key, so it cannot sign decisions.' },
            503,
          );
        try {
          // Signed for the change the page showed (its subject digest), not whatever the pipeline runs for now.
          const subjectDigest = form.subject ?? '';
          await ourPipeline(await temporal(), req.params.id).catch((e: Error) => {
            throw new DecisionRefused(e.message);
          });
          const r = await sendDecision(await temporal(), {
            workflowId: req.params.id,
            stage: req.params.stage,
            person: s.person,
            decision,
            comment: (form.comment ?? '').trim(),
            key: o.consoleKey,
            keyPath: 'console channel key',
            channel: 'console',
            subjectDigest,
          });
          o.metrics?.decisions.inc({ channel: 'console', decision });
          const more = r.outcome
            ? `stage ${r.stage} is ${r.outcome}`
            : `stage ${r.stage} still needs ${r.missingRoles.join(', ') || 'more approvals'}`;
          return showPipeline(reply, s, req.params.id, {
            ok: true,
            text: `Your ${decision === 'approve' ? 'approval' : 'rejection'} was accepted; ${more}.`,
          });
        } catch (e) {
          if (!(e instanceof DecisionRefused)) throw e;
          return showPipeline(reply, s, req.params.id, { ok: false, text: `Refused: ${e.message}` }, 409);
        }
      },
    );
  });

  async function decideFromSlack(a: SlackAction): Promise<void> {
    const respond = async (body: { text: string; replace_original: boolean; response_type?: string }) => {
      // The original message is edited through the Web API when the console has a bot token; otherwise, and for
      // answers only the presser should see, through the interaction's response_url.
      if (body.replace_original && o.slack?.botToken && a.channel && a.messageTs) {
        const web = new WebClient(o.slack.botToken, o.slack.apiUrl ? { slackApiUrl: o.slack.apiUrl } : {});
        await web.chat.update({
          channel: a.channel,
          ts: a.messageTs,
          text: body.text,
          blocks: [{ type: 'section', text: { type: 'mrkdwn', text: body.text } }],
        });
        return;
      }
      if (a.responseUrl)
        await fetch(a.responseUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
    };
    try {
      // The person is mapped through the pipeline's policy: only a pipeline our workers run may answer that query.
      await ourPipeline(await temporal(), a.workflowId);
      const h = (await temporal()).workflow.getHandle(a.workflowId);
      const policy = await h.query(policyQuery);
      const person = policy.people.find((p) => p.slack === a.userId);
      if (!person)
        return await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: `Refused: Slack user ${a.userId} is not a person in policy ${policy.name}.`,
        });
      if (!o.slack?.key)
        return await respond({
          response_type: 'ephemeral',
          replace_original: false,
          text: 'Refused: the console has no slack channel key to sign decisions with.',
        });
      // Signed for the change the Slack message showed.
      const r = await sendDecision(await temporal(), {
        workflowId: a.workflowId,
        stage: a.stage,
        person: person.id,
        decision: a.decision,
        comment: 'via Slack',
        key: o.slack.key,
        keyPath: 'slack channel key',
        channel: 'slack',
        subjectDigest: a.subjectDigest ?? '',
      });
      o.metrics?.decisions.inc({ channel: 'slack', decision: a.decision });
      const verb = a.decision === 'approve' ? 'approved' : 'rejected';
      await respond({
        replace_original: true,
        text: `${a.decision === 'approve' ? '✅' : '⛔'} ${person.id} ${verb} ${a.stage} of ${a.workflowId}${r.outcome ? `; the stage is ${r.outcome}` : `; it still needs ${r.missingRoles.join(', ') || 'more approvals'}`}.`,
      });
    } catch (e) {
      await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${(e as Error).message}` });
    }
  }

  return app;
}

function rolesOf(policy: Policy, person: string): string[] {
  return policy.roles.filter((r) => r.members.includes(person)).map((r) => r.id);
}

function describeSubject(s: PipelineStatus): string {
  return `${s.subject.repo}${s.subject.pr !== undefined ? ` #${s.subject.pr}` : ''} @ ${s.subject.headSha.slice(0, 12)}`;
}

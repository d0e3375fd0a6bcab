// The console's monitor routes: the view of a pipeline's monitor, and incident decisions signed with the console
// channel's key and sent as the same Update the CLI sends (the monitor's validator checks every role).
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyObject } from 'node:crypto';
import { DecisionRefused } from '../client/decisions.js';
import { monitorStatus, ourMonitor, sendIncidentDecision } from '../client/incidents.js';
import { ourPipeline } from '../client/pipelines.js';
import { monitorApproval } from '../policy/incident.js';
import { policyQuery } from '../workflows/messages.js';
import { monitorPage } from './monitor-page.js';
import { pendingPage } from './pages.js';
import type { ConsoleToken } from './tokens.js';

type Session = ConsoleToken & { csrf: string };

export interface MonitorRouteDeps {
  temporal: () => Promise<Client>;
  requireSession: (req: FastifyRequest, reply: FastifyReply) => Promise<Session | undefined>;
  session: (req: FastifyRequest) => Promise<Session | undefined>;
  formOf: (req: FastifyRequest) => Record<string, string | undefined>;
  html: (reply: FastifyReply, page: string, code?: number) => FastifyReply;
  consoleKey?: KeyObject;
}

export function monitorRoutes(scope: FastifyInstance, d: MonitorRouteDeps): void {
  const show = async (
    reply: FastifyReply,
    s: Session,
    id: string,
    flash?: { ok: boolean; text: string },
    code = 200,
  ) => {
    try {
      const c = await d.temporal();
      await ourPipeline(c, id);
      await ourMonitor(c, id);
      const [m, policy] = await Promise.all([monitorStatus(c, id), c.workflow.getHandle(id).query(policyQuery)]);
      const roles = policy.roles.filter((r) => r.members.includes(s.person)).map((r) => r.id);
      const who = { person: s.person, roles, csrf: s.csrf, responderRoles: monitorApproval(policy).roles };
      return d.html(reply, monitorPage(id, m, who, flash), code);
    } catch (e) {
      const why = `The monitor of ${id} cannot be shown: ${(e as Error).message}`;
      return d.html(reply, pendingPage({ person: s.person, roles: [], csrf: s.csrf }, [], why), 404);
    }
  };

  scope.get<{ Params: { id: string } }>('/pipelines/:id/monitor', async (req, reply) => {
    const s = await d.requireSession(req, reply);
    if (!s) return reply;
    return show(reply, s, req.params.id);
  });

  scope.post<{ Params: { id: string; n: string } }>('/pipelines/:id/monitor/incidents/:n', async (req, reply) => {
    const s = await d.session(req);
    const form = d.formOf(req);
    if (!s || !form.csrf || form.csrf !== s.csrf)
      return reply.code(403).type('text/plain').send('refused: no valid session or CSRF token');
    const incident = Number(req.params.n);
    const action = form.action;
    if (!Number.isInteger(incident) || !['rollback', 'retrain', 'dismiss'].includes(String(action)))
      return reply.code(400).type('text/plain').send('action must be rollback, retrain or dismiss');
    if (!d.consoleKey)
      return show(reply, s, req.params.id, { ok: false, text: 'This console has no console channel key.' }, 503);
    const comment = (form.comment ?? '').trim();
    try {
      if (action === 'dismiss' && !comment) throw new DecisionRefused('a dismissal needs a reason in the comment');
      const c = await d.temporal();
      await ourPipeline(c, req.params.id);
      await ourMonitor(c, req.params.id);
      const r = await sendIncidentDecision(c, {
        pipelineId: req.params.id,
        incident,
        person: s.person,
        decision: action === 'dismiss' ? 'reject' : 'approve',
        ...(action === 'rollback'
          ? { resolution: { action: 'rollback' as const, attestation: (form.attestation ?? '').trim() } }
          : action === 'retrain'
            ? { resolution: { action: 'retrain' as const } }
            : {}),
        comment,
        key: d.consoleKey,
        keyPath: 'console channel key',
        channel: 'console',
        // Signed for the model the page showed the incident for.
        modelSha256: form.model ?? '',
      });
      return show(reply, s, req.params.id, { ok: true, text: `Incident ${r.incident} ${r.outcome}.` });
    } catch (e) {
      if (!(e instanceof DecisionRefused)) throw e;
      return show(reply, s, req.params.id, { ok: false, text: `Refused: ${e.message}` }, 409);
    }
  });
}

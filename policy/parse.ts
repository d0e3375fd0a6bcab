import { DEFAULT_APPROVALS, DEFAULT_ROLES, LIFECYCLE } from './defaults.js';
import { own } from './own.js';
import { readData } from './parse-data.js';
import { readMonitor } from './parse-monitor.js';
import { checkGateMetric, readEvaluate } from './parse-evaluate.js';
import { readChannels, readKey } from './parse-keys.js';
import { readTrain } from './parse-train.js';
import { Reader, join } from './reader.js';
import { checkApprovals } from './satisfiable.js';
import { readYaml } from './yaml.js';
import {
  STRIDE,
  type Approval,
  type Artifacts,
  type Gate,
  type GateOp,
  type Person,
  type Policy,
  type Role,
  type Stage,
  type StageName,
  type StrideCategory,
  type ThreatModel,
} from './types.js';

export { MAX_ALIAS_COUNT, MAX_POLICY_BYTES } from './yaml.js';
export { MAX_DURATION_MS } from './reader.js';

export interface ParseOptions {
  /** Name used in messages, usually the path the text was read from. */
  file: string;
  /** Reads a file named by `publicKeyFile`, relative to the policy's folder. Without it such keys are refused. */
  readKeyFile?: (path: string) => string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SHA256 = /^[0-9a-f]{64}$/;
const GATE_OPS: readonly GateOp[] = ['>=', '>', '<=', '<', '=='];

/**
 * Parses and validates `secmlops.yaml`. Pure: no I/O, so every entry point (and workflows) can share it. A policy
 * that parses can also run: every approval it asks for can be met by the people it names.
 */
export function parsePolicy(text: string, opts: ParseOptions): Policy {
  const r = new Reader(opts.file);
  const top = r.mapping(readYaml(text, opts.file), '', {
    required: ['version', 'name', 'people', 'stages'],
    optional: [
      'roles',
      'gates',
      'artifacts',
      'data',
      'train',
      'evaluate',
      'threatModel',
      'channels',
      'release',
      'notifications',
      'monitor',
    ],
  });
  if (top.version !== 1) r.fail('version', `expected 1 (the only schema version), got ${JSON.stringify(top.version)}`);
  const name = r.string(top.name, 'name');
  const people = readPeople(r, top.people);
  const roles = readRoles(r, top.roles, people);
  const roleIds = new Set(roles.map((x) => x.id));
  const stages = readStages(r, top.stages, roleIds);
  const artifacts = readArtifacts(r, top.artifacts);
  const trainConfig = readTrain(r, top.train, stages, artifacts, opts);
  const evaluate = readEvaluate(r, top.evaluate, stages, artifacts);
  const data = readData(r, top.data, stages, artifacts, trainConfig);
  const gates = readGates(r, top.gates, (path, metric) =>
    checkGateMetric(r, path, metric, { stages, artifacts, evaluate, poisoning: data?.poisoning, train: trainConfig }),
  );
  const threatModel = readThreatModel(r, top.threatModel, roleIds);
  const channels = readChannels(r, top.channels, opts);
  let release: Policy['release'];
  if (top.release !== undefined) {
    const m = r.mapping(top.release, 'release', { optional: ['publicKey', 'publicKeyFile'] });
    release = { publicKey: readKey(r, m, 'release', opts) };
  }
  const policy: Policy = {
    version: 1,
    name,
    file: opts.file,
    people,
    roles,
    stages,
    gates,
    artifacts,
    threatModel,
    channels,
    release,
  };
  const monitor = readMonitor(r, top.monitor, stages, artifacts);
  if (monitor) policy.monitor = monitor;
  if (data) policy.data = data;
  if (trainConfig) policy.train = trainConfig;
  if (evaluate) policy.evaluate = evaluate;
  if (top.notifications !== undefined) {
    const n = r.mapping(top.notifications, 'notifications', { optional: ['slack'] });
    if (n.slack !== undefined) {
      const s = r.mapping(n.slack, 'notifications.slack', { required: ['channel'] });
      const channel = r.string(s.channel, 'notifications.slack.channel');
      if (!/^[CGD][A-Z0-9]{6,}$/.test(channel))
        r.fail('notifications.slack.channel', `expected a Slack channel ID such as C0123ABCD, got "${channel}"`);
      policy.notifications = { slack: { channel } };
    }
  }
  checkApprovals(r, policy, explicitApprovals(top.stages));
  return policy;
}

/** Which stages wrote their approval out (readStages has checked the list's shape). */
function explicitApprovals(v: unknown): boolean[] {
  return (v as unknown[]).map(
    (raw) => typeof raw === 'object' && raw !== null && (raw as Record<string, unknown>).approval !== undefined,
  );
}

function readPeople(r: Reader, v: unknown): Person[] {
  const m = r.mapping(v, 'people', 'any');
  const people: Person[] = [];
  const seen = new Map<string, string>();
  for (const [id, raw] of Object.entries(m)) {
    const path = join('people', id);
    r.string(id, path, ID, 'a person id of letters, digits, ".", "_" or "-"');
    r.definedName(id, path, 'person id');
    const p = r.mapping(raw, path, { optional: ['name', 'github', 'slack', 'console'] });
    const person: Person = { id };
    for (const k of ['name', 'github', 'slack', 'console'] as const) {
      const value = r.optString(p[k], join(path, k));
      if (value === undefined) continue;
      person[k] = value;
      if (k === 'name') continue;
      const key = `${k}:${k === 'github' ? value.toLowerCase() : value}`;
      const other = seen.get(key);
      if (other)
        r.fail(
          join(path, k),
          `${k} identity "${value}" is already used by person "${other}"; each identity maps to one person`,
        );
      seen.set(key, id);
    }
    people.push(person);
  }
  if (people.length === 0) r.fail('people', 'expected at least one person');
  return people;
}

function readRoles(r: Reader, v: unknown, people: Person[]): Role[] {
  const m = v === undefined ? {} : r.mapping(v, 'roles', 'any');
  const ids = new Set(people.map((p) => p.id));
  const roles = new Map<string, Role>(
    Object.entries(DEFAULT_ROLES).map(([id, name]) => [id, { id, name, members: [] }]),
  );
  for (const [id, raw] of Object.entries(m)) {
    const path = join('roles', id);
    r.string(id, path, ID, 'a role id of letters, digits, ".", "_" or "-"');
    r.definedName(id, path, 'role id');
    const rm = r.mapping(raw, path, { optional: ['name', 'members'] });
    const name = r.optString(rm.name, join(path, 'name')) ?? own(DEFAULT_ROLES, id);
    if (!name) r.fail(join(path, 'name'), `role "${id}" is not one of the default roles R1-R8, so it needs a name`);
    const members = rm.members === undefined ? [] : r.list(rm.members, join(path, 'members'));
    const checked = members.map((x, i) => {
      const pid = r.string(x, join(join(path, 'members'), i));
      if (!ids.has(pid))
        r.fail(join(join(path, 'members'), i), `unknown person "${pid}"; people are: ${[...ids].join(', ')}`);
      return pid;
    });
    roles.set(id, { id, name, members: checked });
  }
  return [...roles.values()];
}

function readStages(r: Reader, v: unknown, roleIds: Set<string>): Stage[] {
  const list = r.list(v, 'stages', { nonEmpty: true });
  const stages: Stage[] = [];
  let lastIndex = -1;
  list.forEach((raw, i) => {
    const path = join('stages', i);
    const m =
      typeof raw === 'string' ? { name: raw } : r.mapping(raw, path, { required: ['name'], optional: ['approval'] });
    const name = r.string(m.name, join(path, 'name'));
    const lifecycleIndex = (LIFECYCLE as readonly string[]).indexOf(name);
    if (lifecycleIndex < 0)
      r.fail(join(path, 'name'), `unknown stage "${name}"; the lifecycle stages are ${LIFECYCLE.join(', ')}`);
    if (lifecycleIndex <= lastIndex)
      r.fail(
        join(path, 'name'),
        `stage "${name}" is out of order or repeated; stages run in the order ${LIFECYCLE.join(' → ')}`,
      );
    lastIndex = lifecycleIndex;
    const stage: Stage = { name: name as StageName };
    if (m.approval === false) stages.push(stage);
    else {
      stage.approval =
        m.approval === undefined
          ? { ...own(DEFAULT_APPROVALS, stage.name)! }
          : readApproval(r, m.approval, join(path, 'approval'), roleIds);
      stages.push(stage);
    }
  });
  return stages;
}

function readApproval(r: Reader, v: unknown, path: string, roleIds: Set<string>): Approval {
  const m = r.mapping(v, path, {
    required: ['roles'],
    optional: ['quorum', 'everyRole', 'timeout', 'escalation', 'deadline'],
  });
  const roles = r.list(m.roles, join(path, 'roles'), { nonEmpty: true }).map((x, i) => {
    const id = r.string(x, join(join(path, 'roles'), i));
    if (!roleIds.has(id))
      r.fail(join(join(path, 'roles'), i), `unknown role "${id}"; roles are: ${[...roleIds].join(', ')}`);
    return id;
  });
  const everyRole = m.everyRole === undefined ? true : r.boolean(m.everyRole, join(path, 'everyRole'));
  const minQuorum = everyRole ? roles.length : 1;
  const quorum = m.quorum === undefined ? minQuorum : r.integer(m.quorum, join(path, 'quorum'), minQuorum, 100);
  const approval: Approval = { roles, quorum, everyRole };
  const duration = (key: 'timeout' | 'deadline') =>
    r.duration(m[key], join(path, key), 'expected a duration such as 90s, 30m, 4h or 7d');
  if (m.timeout !== undefined) approval.timeoutMs = duration('timeout');
  if (m.deadline !== undefined) approval.deadlineMs = duration('deadline');
  if (m.escalation !== undefined) {
    const id = r.string(m.escalation, join(path, 'escalation'));
    if (!roleIds.has(id))
      r.fail(join(path, 'escalation'), `unknown role "${id}"; roles are: ${[...roleIds].join(', ')}`);
    approval.escalation = id;
  }
  if (approval.timeoutMs !== undefined && approval.escalation === undefined)
    r.fail(join(path, 'escalation'), 'a timeout needs an escalation role to notify');
  if (
    approval.timeoutMs !== undefined &&
    approval.deadlineMs !== undefined &&
    approval.deadlineMs <= approval.timeoutMs
  ) {
    r.fail(join(path, 'deadline'), 'expected a deadline later than the timeout');
  }
  return approval;
}

function readArtifacts(r: Reader, v: unknown): Artifacts {
  if (v === undefined) return {};
  const m = r.mapping(v, 'artifacts', { optional: ['dataset', 'model'] });
  const artifacts: Artifacts = {};
  if (m.dataset !== undefined) {
    const d = r.mapping(m.dataset, 'artifacts.dataset', {
      required: ['root', 'files'],
      optional: ['classes', 'splits', 'maxFileBytes'],
    });
    const files = r.list(d.files, 'artifacts.dataset.files', { nonEmpty: true }).map((raw, i) => {
      const path = join('artifacts.dataset.files', i);
      const f = r.mapping(raw, path, { required: ['path', 'sha256'] });
      const rel = r.string(f.path, join(path, 'path'));
      if (rel.startsWith('/') || rel.split('/').includes('..'))
        r.fail(join(path, 'path'), `expected a path inside the dataset root, got "${rel}"`);
      return {
        path: rel,
        sha256: r.string(f.sha256, join(path, 'sha256'), SHA256, 'a SHA-256 digest as 64 lowercase hex digits'),
      };
    });
    const paths = new Set(files.map((f) => f.path));
    if (paths.size !== files.length) r.fail('artifacts.dataset.files', 'a file is listed twice');
    const splits: Record<string, { images: string; labels: string }> = {};
    const sm = d.splits === undefined ? {} : r.mapping(d.splits, 'artifacts.dataset.splits', 'any');
    for (const [split, raw] of Object.entries(sm)) {
      const path = join('artifacts.dataset.splits', split);
      r.definedName(split, path, 'split name');
      const s = r.mapping(raw, path, { required: ['images', 'labels'] });
      const pick = (k: 'images' | 'labels') => {
        const p = r.string(s[k], join(path, k));
        if (!paths.has(p))
          r.fail(join(path, k), `"${p}" is not among artifacts.dataset.files, so its digest is not pinned`);
        return p;
      };
      splits[split] = { images: pick('images'), labels: pick('labels') };
    }
    const classes = d.classes === undefined ? 10 : r.integer(d.classes, 'artifacts.dataset.classes', 2, 65536);
    artifacts.dataset = { root: r.string(d.root, 'artifacts.dataset.root'), classes, files, splits };
    // Up to 16 GiB: a cap that would hold any real dataset file, so a typo cannot switch the check off.
    if (d.maxFileBytes !== undefined)
      artifacts.dataset.maxFileBytes = r.integer(d.maxFileBytes, 'artifacts.dataset.maxFileBytes', 1024, 2 ** 34);
  }
  if (m.model !== undefined) {
    const mm = r.mapping(m.model, 'artifacts.model', { required: ['path'], optional: ['sha256'] });
    artifacts.model = { path: r.string(mm.path, 'artifacts.model.path') };
    const sha = r.optString(mm.sha256, 'artifacts.model.sha256', SHA256, 'a SHA-256 digest as 64 lowercase hex digits');
    if (sha) artifacts.model.sha256 = sha;
  }
  return artifacts;
}

function readGates(r: Reader, v: unknown, checkMetric: (path: string, metric: string) => void): Gate[] {
  if (v === undefined) return [];
  const ids = new Set<string>();
  return r.list(v, 'gates').map((raw, i) => {
    const path = join('gates', i);
    const g = r.mapping(raw, path, { required: ['metric', 'op', 'value'], optional: ['id'] });
    const metric = r.string(g.metric, join(path, 'metric'));
    checkMetric(join(path, 'metric'), metric);
    const id = r.optString(g.id, join(path, 'id'), ID) ?? `${metric} ${String(g.op)} ${String(g.value)}`;
    if (ids.has(id)) r.fail(join(path, 'id'), `gate id "${id}" is used twice`);
    ids.add(id);
    return { id, metric, op: r.oneOf(g.op, join(path, 'op'), GATE_OPS), value: r.number(g.value, join(path, 'value')) };
  });
}

function readStride(r: Reader, v: unknown, path: string): StrideCategory[] {
  const items = typeof v === 'string' ? [...v.replace(/[\s,]/g, '')] : r.list(v, path, { nonEmpty: true });
  if (items.length === 0) r.fail(path, 'expected STRIDE letters such as "STRIDE" or "TI"');
  return items.map((x, i) => r.oneOf(x, typeof v === 'string' ? path : join(path, i), STRIDE));
}

function readThreatModel(r: Reader, v: unknown, roleIds: Set<string>): ThreatModel {
  if (v === undefined) return { assets: [], controls: [], acceptances: [] };
  const m = r.mapping(v, 'threatModel', { required: ['assets'], optional: ['controls', 'acceptances'] });
  const assets = r.list(m.assets, 'threatModel.assets', { nonEmpty: true }).map((raw, i) => {
    const path = join('threatModel.assets', i);
    const a = r.mapping(raw, path, { required: ['id'], optional: ['description'] });
    return {
      id: r.string(a.id, join(path, 'id'), ID),
      description: r.optString(a.description, join(path, 'description')),
    };
  });
  const assetIds = new Set(assets.map((a) => a.id));
  const asset = (x: unknown, path: string) => {
    const id = r.string(x, path);
    if (!assetIds.has(id)) r.fail(path, `unknown asset "${id}"; assets are: ${[...assetIds].join(', ')}`);
    return id;
  };
  const controls = (m.controls === undefined ? [] : r.list(m.controls, 'threatModel.controls')).map((raw, i) => {
    const path = join('threatModel.controls', i);
    const c = r.mapping(raw, path, { required: ['id', 'mitigates'], optional: ['description'] });
    const mitigates = r.list(c.mitigates, join(path, 'mitigates'), { nonEmpty: true }).map((mr, j) => {
      const mp = join(join(path, 'mitigates'), j);
      const mm = r.mapping(mr, mp, { required: ['asset', 'stride'] });
      return { asset: asset(mm.asset, join(mp, 'asset')), stride: readStride(r, mm.stride, join(mp, 'stride')) };
    });
    return {
      id: r.string(c.id, join(path, 'id'), ID),
      description: r.optString(c.description, join(path, 'description')),
      mitigates,
    };
  });
  const acceptances = (m.acceptances === undefined ? [] : r.list(m.acceptances, 'threatModel.acceptances')).map(
    (raw, i) => {
      const path = join('threatModel.acceptances', i);
      const a = r.mapping(raw, path, { required: ['asset', 'stride', 'role', 'reason'] });
      const role = r.string(a.role, join(path, 'role'));
      if (!roleIds.has(role)) r.fail(join(path, 'role'), `unknown role "${role}"`);
      return {
        asset: asset(a.asset, join(path, 'asset')),
        stride: readStride(r, a.stride, join(path, 'stride')),
        role,
        reason: r.string(a.reason, join(path, 'reason')),
      };
    },
  );
  return { assets, controls, acceptances };
}

// The experiment's results as a Markdown table and an SVG chart: per attack, each defense's miss rate on the
// safety-critical class and its robust accuracy. Hand-written SVG (no dependency), escaped text only.
import type { CellResult } from '../workflows/experiment.js';
import { DEFENSE_LABELS, type AttackName, type DefenseName, type ExperimentSpec } from './spec.js';

const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(1)}%`);

function cell(results: CellResult[], d: DefenseName, a: AttackName): CellResult | undefined {
  return results.find((r) => r.defense === d && r.attack === a);
}

export function markdownTable(spec: ExperimentSpec, results: CellResult[]): string {
  const head = `| defense | clean accuracy | ${spec.attacks.map((a) => `${a}: miss / robust`).join(' | ')} |`;
  const rule = `| --- | --- | ${spec.attacks.map(() => '---').join(' | ')} |`;
  const rows = spec.defenses.map((d) => {
    const clean = spec.attacks.map((a) => cell(results, d, a)).find((r) => r && !r.attack.startsWith('poisoning'));
    const cells = spec.attacks.map((a) => {
      const r = cell(results, d, a);
      if (!r) return 'not run';
      const guarded = r.guard ? ` (guarded ${pct(r.guard.guardedMissRate)})` : '';
      return `${pct(r.safetyCritical.missRate)}${guarded} / ${pct(r.robustAccuracy)}`;
    });
    // The full policy's decision margin: its value, and the false alarms on other classes it costs.
    const m = clean?.margin;
    const label = m ? `${DEFENSE_LABELS[d]} (margin ${m.value.toFixed(2)})` : DEFENSE_LABELS[d];
    const alarms = m ? ` (class ${spec.safetyCritical} false alarms ${pct(clean?.safetyCritical.falseAlarmRate)})` : '';
    return `| ${label} | ${pct(clean?.cleanAccuracy)}${alarms} | ${cells.join(' | ')} |`;
  });
  return [
    `Miss rate of class ${spec.safetyCritical} (safety-critical) under each attack / robust accuracy on all images.`,
    '',
    head,
    rule,
    ...rows,
  ].join('\n');
}

const COLORS = ['#6b7280', '#2563eb', '#059669', '#d97706', '#dc2626'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Two panels of grouped bars (one group per attack, one bar per defense): miss rate above, robust accuracy below. */
export function svgChart(spec: ExperimentSpec, results: CellResult[]): string {
  const groupW = 40 + 22 * spec.defenses.length;
  const width = 80 + groupW * spec.attacks.length + 170;
  const panelH = 160;
  const out: string[] = [];
  const panel = (top: number, title: string, value: (r: CellResult) => number) => {
    out.push(`<text x="10" y="${top - 8}" font-size="13" font-weight="bold">${esc(title)}</text>`);
    for (const t of [0, 0.5, 1]) {
      const y = top + panelH * (1 - t);
      out.push(`<line x1="60" x2="${80 + groupW * spec.attacks.length}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`);
      out.push(`<text x="55" y="${y + 4}" font-size="10" text-anchor="end">${t * 100}%</text>`);
    }
    spec.attacks.forEach((a, gi) => {
      const x0 = 80 + gi * groupW;
      spec.defenses.forEach((d, di) => {
        const r = cell(results, d, a);
        const v = r ? value(r) : NaN;
        if (Number.isNaN(v)) return;
        const h = panelH * v;
        out.push(
          `<rect x="${x0 + di * 22}" y="${(top + panelH - h).toFixed(1)}" width="18" height="${h.toFixed(1)}" ` +
            `fill="${COLORS[di % COLORS.length]}">` +
            `<title>${esc(`${DEFENSE_LABELS[d]}, ${a}: ${pct(v)}`)}</title></rect>`,
        );
      });
      out.push(
        `<text x="${x0 + (22 * spec.defenses.length) / 2}" y="${top + panelH + 14}" font-size="10" ` +
          `text-anchor="middle">${esc(a)}</text>`,
      );
    });
  };
  panel(30, `Miss rate of class ${spec.safetyCritical} under attack`, (r) => r.safetyCritical.missRate);
  panel(30 + panelH + 60, 'Robust accuracy (all images)', (r) => r.robustAccuracy);
  const lx = 100 + groupW * spec.attacks.length;
  spec.defenses.forEach((d, i) => {
    out.push(`<rect x="${lx}" y="${40 + i * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 18}" y="${50 + i * 18}" font-size="11">${esc(DEFENSE_LABELS[d])}</text>`);
  });
  const height = 30 + 2 * panelH + 100;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

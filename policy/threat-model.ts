import { STRIDE, STRIDE_NAMES, type StrideCategory, type ThreatModel } from './types.js';

export interface ThreatCell {
  asset: string;
  stride: StrideCategory;
  controls: string[];
  acceptedBy?: { role: string; reason: string };
  status: 'controlled' | 'accepted' | 'uncovered';
}

/** One cell per asset and STRIDE category: a control, a recorded risk acceptance, or neither (which blocks the plan stage). */
export function threatMatrix(tm: ThreatModel): ThreatCell[] {
  const cells: ThreatCell[] = [];
  for (const asset of tm.assets) {
    for (const stride of STRIDE) {
      const controls = tm.controls
        .filter((c) => c.mitigates.some((m) => m.asset === asset.id && m.stride.includes(stride)))
        .map((c) => c.id);
      const acc = tm.acceptances.find((a) => a.asset === asset.id && a.stride.includes(stride));
      const cell: ThreatCell = {
        asset: asset.id,
        stride,
        controls,
        status: controls.length > 0 ? 'controlled' : acc ? 'accepted' : 'uncovered',
      };
      if (acc) cell.acceptedBy = { role: acc.role, reason: acc.reason };
      cells.push(cell);
    }
  }
  return cells;
}

export function describeCell(c: ThreatCell): string {
  return `${c.asset} × ${STRIDE_NAMES[c.stride]} (${c.stride})`;
}

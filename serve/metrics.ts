// The server's counters and latency histograms in Prometheus' text exposition format (version 0.0.4), written by
// hand: a handful of series does not need a client library.

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  sum = 0;
  n = 0;
  observe(seconds: number): void {
    this.sum += seconds;
    this.n++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) this.counts[i]++;
  }
  lines(name: string, labels = ''): string[] {
    const l = (extra: string) => `{${[labels, extra].filter(Boolean).join(',')}}`;
    return [
      ...BUCKETS.map((b, i) => `${name}_bucket${l(`le="${b}"`)} ${this.counts[i]}`),
      `${name}_bucket${l('le="+Inf"')} ${this.n}`,
      `${name}_sum${labels ? `{${labels}}` : ''} ${this.sum}`,
      `${name}_count${labels ? `{${labels}}` : ''} ${this.n}`,
    ];
  }
}

export class ServeMetrics {
  private readonly requests = new Map<string, number>();
  private readonly rejections = new Map<string, number>();
  readonly latency = new Histogram();
  readonly validation = new Histogram();
  images = 0;
  detectorScored = 0;
  detectorFlagged = 0;

  scored(n: number, flagged: number): void {
    this.detectorScored += n;
    this.detectorFlagged += flagged;
  }

  request(status: number): void {
    this.requests.set(String(status), (this.requests.get(String(status)) ?? 0) + 1);
  }

  rejected(reason: string): void {
    this.rejections.set(reason, (this.rejections.get(reason) ?? 0) + 1);
  }

  rejectionsFor(reason: string): number {
    return this.rejections.get(reason) ?? 0;
  }

  text(
    model: string,
    served?: {
      halted?: string;
      switches: number;
      lastWindow?: { index: number; drift: { stat: string; psi: number; ks?: { p: number } }[] };
    },
  ): string {
    const drift = served?.lastWindow?.drift ?? [];
    const out = [
      '# HELP secmlops_serve_requests_total Prediction requests by HTTP status.',
      '# TYPE secmlops_serve_requests_total counter',
      ...[...this.requests].map(([s, v]) => `secmlops_serve_requests_total{status="${s}"} ${v}`),
      '# HELP secmlops_serve_rejections_total Requests refused by input validation, by reason.',
      '# TYPE secmlops_serve_rejections_total counter',
      ...[...this.rejections].map(([r, v]) => `secmlops_serve_rejections_total{reason="${r}"} ${v}`),
      '# HELP secmlops_serve_images_total Images classified.',
      '# TYPE secmlops_serve_images_total counter',
      `secmlops_serve_images_total ${this.images}`,
      '# HELP secmlops_serve_request_seconds Whole prediction requests, parsing to reply.',
      '# TYPE secmlops_serve_request_seconds histogram',
      ...this.latency.lines('secmlops_serve_request_seconds'),
      '# HELP secmlops_serve_validation_seconds Input validation alone.',
      '# TYPE secmlops_serve_validation_seconds histogram',
      ...this.validation.lines('secmlops_serve_validation_seconds'),
      '# HELP secmlops_serve_model_info The attested model being served.',
      '# TYPE secmlops_serve_model_info gauge',
      `secmlops_serve_model_info{sha256="${model}"} 1`,
      '# HELP secmlops_serve_detector_inputs_total Inputs the adversarial-input detector scored, and flagged.',
      '# TYPE secmlops_serve_detector_inputs_total counter',
      `secmlops_serve_detector_inputs_total ${this.detectorScored}`,
      '# HELP secmlops_serve_detector_flags_total Inputs the detector flagged as adversarial.',
      '# TYPE secmlops_serve_detector_flags_total counter',
      `secmlops_serve_detector_flags_total ${this.detectorFlagged}`,
      '# HELP secmlops_serve_halted 1 while serving is stopped (the model file no longer matches its attestation).',
      '# TYPE secmlops_serve_halted gauge',
      `secmlops_serve_halted ${served?.halted ? 1 : 0}`,
      '# HELP secmlops_serve_model_switches_total Rollbacks to another attested model.',
      '# TYPE secmlops_serve_model_switches_total counter',
      `secmlops_serve_model_switches_total ${served?.switches ?? 0}`,
      '# HELP secmlops_serve_drift_psi Population stability index per statistic in the monitor’s latest window.',
      '# TYPE secmlops_serve_drift_psi gauge',
      ...drift.map((d) => `secmlops_serve_drift_psi{stat="${d.stat}"} ${d.psi}`),
      '# HELP secmlops_serve_drift_ks_p Kolmogorov–Smirnov p-value per statistic in the monitor’s latest window.',
      '# TYPE secmlops_serve_drift_ks_p gauge',
      ...drift.flatMap((d) => (d.ks ? [`secmlops_serve_drift_ks_p{stat="${d.stat}"} ${d.ks.p}`] : [])),
    ];
    return `${out.join('\n')}\n`;
  }
}

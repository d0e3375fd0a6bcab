// One parser's fixed-seed sample in a process of its own, printing its statistics as JSON: `npm test` runs the
// sample this way so that the memory budget and the garbage collection between cases see this loop alone, not a
// jest process that has already run every other suite (there, two full collections per case took minutes).
//   node --import tsx fuzz/sample.ts PARSER SEED COUNT TMPDIR
import { PARSERS, type Parser } from './cases.js';
import { fuzzParser } from './in-process.js';
import { describeFinding, structDecodeShare } from './stats.js';

const [parser, seed, count, tmp] = process.argv.slice(2);
if (!(PARSERS as readonly string[]).includes(parser) || !tmp)
  throw new Error('usage: fuzz/sample.ts PARSER SEED COUNT TMPDIR');
const stats = await fuzzParser(parser as Parser, { seed: Number(seed), count: Number(count), tmp });
console.log(
  JSON.stringify({
    findings: stats.findings.map(describeFinding),
    mutatorErrors: stats.mutatorErrors,
    cases: stats.cases,
    maxMs: stats.maxMs,
    accepted: stats.accepted,
    refused: stats.refused,
    decodes: structDecodeShare(stats),
    refusalKinds: stats.refusals.size,
  }),
);

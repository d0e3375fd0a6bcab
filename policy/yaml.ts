// The YAML boundary. A policy can come from a pull request, so its text is hostile until parsed: the yaml library
// throws plain errors for alias bombs, dangling aliases and nesting deeper than the stack, and every one of them
// must reach the caller as a PolicyError naming the file, with the position when there is one.
import { LineCounter, isAlias, parseDocument, visit, type Document } from 'yaml';
import { utf8 } from './canonical.js';
import { PolicyError } from './errors.js';

/** The same limit the file reader applies, for callers that hand the parser text they read themselves. */
export const MAX_POLICY_BYTES = 1 << 20;
/**
 * How many nodes aliases may expand to (the yaml library's own count): a policy needs a few anchors at most, and a
 * billion-laughs document needs many more long before it exhausts memory.
 */
export const MAX_ALIAS_COUNT = 100;

/** The policy's YAML as plain data. */
export function readYaml(text: string, file: string): unknown {
  // A UTF-16 code unit is at least one UTF-8 byte, so the length alone refuses huge text before encoding it.
  const bytes = text.length > MAX_POLICY_BYTES ? text.length : utf8(text).length;
  if (bytes > MAX_POLICY_BYTES)
    throw new PolicyError(file, '', `${bytes} bytes, over the ${MAX_POLICY_BYTES}-byte limit for a policy`);
  const lineCounter = new LineCounter();
  const at = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return `line ${pos.line}, column ${pos.col}`;
  };
  let doc: Document.Parsed;
  try {
    // logLevel error: the library would otherwise print warnings (collection keys) from inside a pure parser.
    doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter, logLevel: 'error' });
  } catch (e) {
    throw new PolicyError(file, '', `not valid YAML: ${describe(e)}`);
  }
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new PolicyError(file, at(e.pos[0]), `not valid YAML: ${describe(e)}`);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const alias = firstAlias(doc, (e as Error).message);
    throw new PolicyError(file, alias === undefined ? '' : at(alias), `not valid YAML: ${describe(e)}`);
  }
}

function describe(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (/call stack/i.test(message)) return 'nested too deeply';
  if (message.startsWith('Excessive alias count'))
    return `aliases expand to more than ${MAX_ALIAS_COUNT} nodes, as in an alias bomb; write the repeated values out`;
  const dangling = /^Unresolved alias[^:]*: (.*)$/.exec(message);
  if (dangling) return `alias *${dangling[1]} names no anchor &${dangling[1]} before it`;
  return message.split('\n')[0];
}

/** Where the alias a toJS error is about starts: the dangling one, or else the first (bombs have no single culprit). */
function firstAlias(doc: Document.Parsed, message: string): number | undefined {
  const anchors = new Set<string>();
  let first: number | undefined;
  let dangling: number | undefined;
  try {
    visit(doc, {
      Node(_key, node) {
        if (isAlias(node)) {
          first ??= node.range?.[0];
          if (dangling === undefined && !anchors.has(node.source)) dangling = node.range?.[0];
        } else if (node.anchor) anchors.add(node.anchor);
      },
    });
  } catch {
    return undefined; // The position is a courtesy; the error is reported without it.
  }
  return message.startsWith('Unresolved alias') ? dangling : first;
}

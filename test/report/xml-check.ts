/**
 * A small well-formedness check for the SVG we write (no XML parser among the dependencies):
 * one root, balanced and properly nested tags, quoted attributes without duplicates, and no raw
 * "<" or unescaped "&" in text. Returns the problems found (empty when well-formed).
 */
export function xmlProblems(xml: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const token =
    /<!--[\s\S]*?-->|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<|&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/g;
  let m: RegExpExecArray | null;
  while ((m = token.exec(xml))) {
    const [whole, close, name, attrs, selfClose] = m;
    if (whole.startsWith('<!--')) continue;
    if (whole === '<') {
      problems.push(`stray "<" or malformed tag at ${m.index}: ${xml.slice(m.index, m.index + 40)}`);
      continue;
    }
    if (whole.startsWith('&')) {
      problems.push(`unescaped "&" at ${m.index}`);
      continue;
    }
    if (close) {
      if (attrs) problems.push(`attributes on closing tag </${name}>`);
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? '(nothing)'}>`);
      continue;
    }
    const names = [...(attrs ?? '').matchAll(/([^\s=/>]+)\s*=/g)].map((a) => a[1]);
    if (new Set(names).size !== names.length) problems.push(`duplicate attribute on <${name}>`);
    if (stack.length === 0) roots++;
    if (!selfClose) stack.push(name!);
  }
  if (stack.length) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

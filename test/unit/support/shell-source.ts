// Reading the pod scripts as source: which environment variables a script (with the files
// it sources) reads, and its code without comments. A small lexer for the POSIX sh these
// scripts are written in (functions as `name() {` ... `}` at the start of a line).
import { readFileSync } from 'fs';
import { join } from 'path';
import { ROOT } from '../helpers';

export const SCRIPTS_DIR = join(ROOT, 'lib/pod/scripts');

export function scriptSource(name: string): string {
  return readFileSync(join(SCRIPTS_DIR, name), 'utf8');
}

/**
 * The text with comments removed; with `dropSingleQuoted`, single-quoted strings (awk
 * programs, fixed text: nothing the shell expands) are emptied too.
 */
export function stripShell(text: string, dropSingleQuoted: boolean): string {
  let out = '';
  // Contexts: code (depth of $( ... ) nesting), double-quoted string.
  const stack: ('code' | 'dq')[] = ['code'];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const top = stack[stack.length - 1];
    if (top === 'code') {
      if (c === '\\') { out += text.slice(i, i + 2); i += 2; continue; }
      if (c === "'") {
        const end = text.indexOf("'", i + 1);
        out += dropSingleQuoted ? "''" : text.slice(i, end + 1);
        i = end + 1;
        continue;
      }
      if (c === '"') { stack.push('dq'); out += c; i++; continue; }
      if (c === '#' && (i === 0 || /[\s;&|(]/.test(text[i - 1]))) {
        const end = text.indexOf('\n', i);
        i = end < 0 ? text.length : end;
        continue;
      }
      if (c === '$' && text[i + 1] === '(') { stack.push('code'); out += '$('; i += 2; continue; }
      if (c === ')' && stack.length > 1) { stack.pop(); out += c; i++; continue; }
      if (c === '(' && stack.length > 1) { stack.push('code'); out += c; i++; continue; }
      out += c;
      i++;
    } else {
      if (c === '\\') { out += text.slice(i, i + 2); i += 2; continue; }
      if (c === '"') { stack.pop(); out += c; i++; continue; }
      if (c === '$' && text[i + 1] === '(') { stack.push('code'); out += '$('; i += 2; continue; }
      out += c;
      i++;
    }
  }
  return out;
}

/** Files a script sources with `. "$(dirname "$0")/NAME"`, recursively, the script first. */
export function withSourced(script: string, seen: string[] = []): string[] {
  if (seen.includes(script)) return seen;
  seen.push(script);
  for (const m of scriptSource(script).matchAll(/^\. "\$\(dirname "\$0"\)\/([\w.-]+)"$/gm)) withSourced(m[1], seen);
  return seen;
}

interface Parsed { functions: Map<string, string>; topLevel: string }

function parse(code: string): Parsed {
  const functions = new Map<string, string>();
  let topLevel = '';
  const lines = code.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const def = /^([a-z_][a-z0-9_]*)\(\) \{$/.exec(lines[i]);
    if (!def) { topLevel += `${lines[i]}\n`; continue; }
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '}'; i++) body.push(lines[i]);
    functions.set(def[1], body.join('\n'));
  }
  return { functions, topLevel };
}

/** Upper-case variables expanded in `code`: `$NAME`, `${NAME...}` and bare names inside `$(( ))`. */
function expanded(code: string): { required: Set<string>; optional: Set<string> } {
  const required = new Set<string>();
  const optional = new Set<string>();
  for (const m of code.matchAll(/\$\{([A-Z][A-Z0-9_]*)(:?[-=?+])?/g)) (m[2] === ':-' || m[2] === '-' ? optional : required).add(m[1]);
  for (const m of code.matchAll(/\$([A-Z][A-Z0-9_]*)/g)) required.add(m[1]);
  for (let at = code.indexOf('$(('); at >= 0; at = code.indexOf('$((', at + 3)) {
    let depth = 0;
    let end = at + 1;
    for (; end < code.length; end++) {
      if (code[end] === '(') depth++;
      else if (code[end] === ')' && --depth === 0) break;
    }
    for (const name of code.slice(at + 3, end).matchAll(/(?<![$\w-])([A-Z][A-Z0-9_]*)\b/g)) required.add(name[1]);
  }
  return { required, optional };
}

/** Variables a statement assigns: `NAME=...` at the start of a statement, `read -r A B`, `for NAME in`. */
function assigned(code: string): Set<string> {
  const names = new Set<string>();
  for (const m of code.matchAll(/(?:^|[;&|{]|\bthen|\bdo|\belse)\s*([A-Z][A-Z0-9_]*)=/gm)) names.add(m[1]);
  for (const m of code.matchAll(/\bread -r ([A-Za-z_ ]+)/g)) for (const n of m[1].trim().split(/\s+/)) names.add(n);
  for (const m of code.matchAll(/\bfor ([A-Z][A-Z0-9_]*) in\b/g)) names.add(m[1]);
  return names;
}

/**
 * The environment a script needs: upper-case variables read by its top-level code, the
 * top-level code of the files it sources, and every function reachable from them, that
 * no statement in those files assigns. `optional` are those read only with a default.
 */
export function environmentRead(script: string): { required: string[]; optional: string[] } {
  const files = withSourced(script).map((f) => parse(stripShell(scriptSource(f), true)));
  const functions = new Map<string, string>();
  for (const f of files) for (const [name, body] of f.functions) functions.set(name, body);
  const reached = new Set<string>();
  const visit = (code: string) => {
    for (const word of code.matchAll(/[a-z_][a-z0-9_]*/g)) {
      if (functions.has(word[0]) && !reached.has(word[0])) {
        reached.add(word[0]);
        visit(functions.get(word[0])!);
      }
    }
  };
  const topLevel = files.map((f) => f.topLevel).join('\n');
  visit(topLevel);
  const code = [topLevel, ...[...reached].map((n) => functions.get(n)!)].join('\n');
  const local = assigned(files.map((f) => [f.topLevel, ...f.functions.values()].join('\n')).join('\n'));
  const { required, optional } = expanded(code);
  const req = [...required].filter((n) => !local.has(n)).sort();
  return { required: req, optional: [...optional].filter((n) => !local.has(n) && !req.includes(n)).sort() };
}

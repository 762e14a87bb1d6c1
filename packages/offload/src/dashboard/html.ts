/**
 * The dashboard's one escaping helper. Every page is written with the `html` tag: each value put
 * into it is escaped, unless it is itself `Html` made by the tag (or by `joinHtml`). Payloads,
 * errors, names and keys are user data, so nothing reaches a page any other way.
 */

const kHtml = Symbol('offload.html');

/** Markup that is already safe: made by `html`, whose values were escaped. */
export interface Html {
  readonly [kHtml]: true;
  readonly text: string;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Text made safe in element content and in quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function isHtml(value: unknown): value is Html {
  return typeof value === 'object' && value !== null && kHtml in value;
}

function safe(text: string): Html {
  return { [kHtml]: true, text };
}

/** A value as markup: `Html` as it is, arrays piece by piece, null and undefined as nothing. */
function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (isHtml(value)) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(value);
}

/** The tag: `html\`<td>${name}</td>\`` escapes `name`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i += 1) text += render(values[i]) + strings[i + 1]!;
  return safe(text);
}

/** Pieces of markup (or text, escaped) one after the other, with `separator` between. */
export function joinHtml(pieces: readonly unknown[], separator = ''): Html {
  return safe(pieces.map(render).join(escapeHtml(separator)));
}

/** The text of a page. */
export function toText(markup: Html): string {
  return markup.text;
}

/** A value as indented JSON text, for a `<pre>` (the tag escapes it when it is put in). */
export function prettyJson(value: unknown): string {
  try {
    return JSON.stringify(value, null, 2) ?? 'null';
  } catch {
    return String(value);
  }
}

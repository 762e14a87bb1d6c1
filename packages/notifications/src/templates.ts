import { Liquid, Tag, type Template, type TagToken, type TopLevelToken } from 'liquidjs';
import type { Json, Store, StoredRecord } from 'offload';
import { NotificationError } from './notification.js';
import { characters, tooLong } from './recipients.js';

/**
 * Notification templates: a subject, a text body, an optional HTML body and an optional push
 * title, written in Liquid, kept in the store's records with every version. A notify request
 * names one with its data; it is rendered once, when the request is accepted, and the rendered
 * text is what the deliveries send (stored once for all recipients, see content.ts).
 *
 * Liquid runs sandboxed: a template reads its data and nothing else (no file, no environment, no
 * property of the data's prototypes), an undefined variable or filter is an error, and a render is
 * stopped when it takes too long or allocates too much.
 */

/** A template as `PUT /api/templates/:name` takes it. */
export interface TemplateSource {
  subject: string;
  text: string;
  html: string | null;
  pushTitle: string | null;
}

/** A version of a template, as stored. */
export interface TemplateVersion extends TemplateSource {
  name: string;
  version: number;
  /** When this version was made, ISO 8601. */
  createdAt: string;
}

/** What rendering a template gives: the content of a notification. */
export interface RenderedTemplate {
  subject: string;
  body: string;
  html: string | null;
  /** The push title; null: push uses the subject. */
  title: string | null;
}

/** The current version of each template, by name; its revision is its version. */
export const TEMPLATES = 'notification-templates';
/** Every version, by `<name>@<version, ten digits>`. */
export const TEMPLATE_VERSIONS = 'notification-template-versions';

export const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
/** The longest source of each part, in characters. */
const SOURCE_LIMITS = { subject: 1000, text: 20_000, html: 50_000, pushTitle: 1000 };
/** The longest rendered text of each part, in characters: as a notify request's own text. */
const OUTPUT_LIMITS = { subject: 200, body: 10_000, html: 50_000, title: 200 };
/**
 * The most time one render may take, in ms of wall time: it runs while the request waits. Wide
 * enough that a pause of the process (a garbage collection, a busy machine) does not fail a
 * template that renders in microseconds; a loop without end is stopped after it.
 */
export const RENDER_TIME_LIMIT = 200;
/** The most one render may allocate (strings, arrays), in characters and elements. */
export const RENDER_MEMORY_LIMIT = 1_000_000;
/** Versions a GET lists, newest first. */
const LISTED_VERSIONS = 100;

const FIELDS = ['subject', 'text', 'html', 'pushTitle'];

/**
 * `include`, `render` and `layout` read other templates; here there are none to read. They are
 * refused when the template is parsed, so a template using them is refused when it is put (the
 * engine has no file system either: `templates` is empty).
 */
class RefusedTag extends Tag {
  constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: Liquid) {
    super(token, remainTokens, liquid);
    throw new Error(
      `the tag "${token.name}" is not available: a template cannot read other templates or files`,
    );
  }

  *render(): Generator<unknown, void, unknown> {}
}

function engine(): Liquid {
  const liquid = new Liquid({
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    templates: {},
    relativeReference: false,
    cache: false,
    parseLimit: SOURCE_LIMITS.html * 2,
    renderLimit: RENDER_TIME_LIMIT,
    memoryLimit: RENDER_MEMORY_LIMIT,
  });
  for (const tag of ['include', 'render', 'layout']) liquid.registerTag(tag, RefusedTag);
  return liquid;
}

/** A template parsed, ready to render. */
interface Parsed {
  revision: number;
  subject: Template[];
  text: Template[];
  html: Template[] | null;
  pushTitle: Template[] | null;
}

/** Parsed templates kept, by name: parsing costs more than the store's read of the current one. */
const CACHED = 200;

/** Templates on a store's records. */
export class Templates {
  private readonly liquid = engine();
  private readonly parsed = new Map<string, Parsed>();

  constructor(private readonly store: () => Promise<Store>) {}

  /** Checks a PUT body: a 400 naming the part that does not parse. */
  check(body: unknown): TemplateSource {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid(
        'body',
        'the body must be a JSON object such as {"subject": "Hello {{ name }}", "text": "…", "html": "…", "pushTitle": "…"}',
      );
    }
    const fields = body as Record<string, unknown>;
    const unknown = Object.keys(fields).find((key) => !FIELDS.includes(key));
    if (unknown !== undefined) {
      throw invalid(
        unknown,
        `${JSON.stringify(unknown)} is not a field of a template; use ${FIELDS.join(', ')}`,
      );
    }
    const source: TemplateSource = {
      subject: part(fields, 'subject', true)!,
      text: part(fields, 'text', true)!,
      html: part(fields, 'html', false),
      pushTitle: part(fields, 'pushTitle', false),
    };
    this.parse(source, 0);
    return source;
  }

  /** Stores `source` as the next version of template `name`. */
  async put(name: string, source: TemplateSource, now: Date): Promise<TemplateVersion> {
    checkName(name);
    const store = await this.store();
    const current = await store.putRecord(
      { collection: TEMPLATES, id: name, value: JSON.stringify(source) },
      now.getTime(),
    );
    await store.putRecord(
      {
        collection: TEMPLATE_VERSIONS,
        id: versionId(name, current.revision),
        value: current.value,
      },
      now.getTime(),
    );
    return toVersion(current);
  }

  /** The current version and the older ones (newest first, at most 100), or null. */
  async get(name: string): Promise<{ current: TemplateVersion; older: TemplateVersion[] } | null> {
    checkName(name);
    const store = await this.store();
    const [current] = await store.getRecords(TEMPLATES, [name]);
    if (!current) return null;
    const versions = await store.listRecords(TEMPLATE_VERSIONS, {
      prefix: `${name}@`,
      descending: true,
      limit: LISTED_VERSIONS + 1,
    });
    const older = versions
      .map((record) => ({ ...toVersion(record), version: versionOf(record.id) }))
      .filter((version) => version.version < current.revision)
      .slice(0, LISTED_VERSIONS);
    return { current: toVersion(current), older };
  }

  /**
   * Renders the current version of `name` with `data`. A template that does not exist, a variable
   * the data lacks, a render that runs too long or grows too large, is a NotificationError naming
   * it (a 400), at request time.
   */
  async render(
    name: string,
    data: { [key: string]: Json } | null,
    field = 'template',
  ): Promise<RenderedTemplate & { version: number }> {
    if (!TEMPLATE_NAME.test(name)) throw unknownTemplate(name, field);
    const [record] = await (await this.store()).getRecords(TEMPLATES, [name]);
    if (!record) throw unknownTemplate(name, field);
    let parsed = this.parsed.get(name);
    if (parsed === undefined || parsed.revision !== record.revision) {
      parsed = this.parse(JSON.parse(record.value) as TemplateSource, record.revision);
      this.parsed.delete(name);
      this.parsed.set(name, parsed);
      if (this.parsed.size > CACHED) this.parsed.delete(this.parsed.keys().next().value!);
    }
    return { ...this.renderParsed(name, parsed, data ?? {}), version: record.revision };
  }

  /** Renders `source` with `data` without storing anything: for preview. */
  preview(
    source: TemplateSource,
    name: string,
    data: { [key: string]: Json },
    revision: number,
  ): RenderedTemplate {
    return this.renderParsed(name, this.parse(source, revision), data);
  }

  private parse(source: TemplateSource, revision: number): Parsed {
    const parse = (field: keyof TemplateSource, text: string | null) => {
      if (text === null) return null;
      try {
        return this.liquid.parse(text);
      } catch (error) {
        throw invalid(field, `${field} is not a template Liquid can read: ${liquidMessage(error)}`);
      }
    };
    return {
      revision,
      subject: parse('subject', source.subject)!,
      text: parse('text', source.text)!,
      html: parse('html', source.html),
      pushTitle: parse('pushTitle', source.pushTitle),
    };
  }

  private renderParsed(
    name: string,
    parsed: Parsed,
    data: { [key: string]: Json },
  ): RenderedTemplate {
    const render = (field: string, template: Template[] | null, limit: number): string | null => {
      if (template === null) return null;
      let output: string;
      try {
        output = String(this.liquid.renderSync(template, data));
      } catch (error) {
        throw new NotificationError(
          'TEMPLATE_RENDER_FAILED',
          'data',
          `the template ${JSON.stringify(name)} could not be rendered (${field}): ${liquidMessage(error)}`,
        );
      }
      if (tooLong(output, limit)) {
        throw new NotificationError(
          'TEMPLATE_RENDER_FAILED',
          'data',
          `the template ${JSON.stringify(name)} renders a ${field} of ${characters(output)} characters; at most ${limit} are sent`,
        );
      }
      return output;
    };
    const subject = render('subject', parsed.subject, OUTPUT_LIMITS.subject)!.trim();
    if (/[\r\n]/.test(subject)) {
      throw new NotificationError(
        'TEMPLATE_RENDER_FAILED',
        'data',
        `the template ${JSON.stringify(name)} renders a subject of several lines; a subject is one line`,
      );
    }
    return {
      subject,
      body: render('text', parsed.text, OUTPUT_LIMITS.body)!,
      html: render('html', parsed.html, OUTPUT_LIMITS.html),
      title: render('pushTitle', parsed.pushTitle, OUTPUT_LIMITS.title),
    };
  }
}

export function checkName(name: string): void {
  if (!TEMPLATE_NAME.test(name)) {
    throw invalid(
      'name',
      `${JSON.stringify(name.slice(0, 100))} is not a template name: use 1 to 100 of A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit`,
    );
  }
}

function part(
  fields: Record<string, unknown>,
  name: keyof TemplateSource,
  required: boolean,
): string | null {
  const value = fields[name];
  if (value === undefined || value === null) {
    if (required) throw invalid(name, `${name} is required: a Liquid template`);
    return null;
  }
  const limit = SOURCE_LIMITS[name];
  if (typeof value !== 'string' || value.length === 0 || tooLong(value, limit)) {
    throw invalid(name, `${name} must be a string of 1 to ${limit} characters`);
  }
  return value;
}

function versionId(name: string, version: number): string {
  return `${name}@${String(version).padStart(10, '0')}`;
}

function versionOf(id: string): number {
  return Number(id.slice(id.lastIndexOf('@') + 1));
}

function toVersion(record: StoredRecord): TemplateVersion {
  const source = JSON.parse(record.value) as TemplateSource;
  const at = record.id.lastIndexOf('@');
  return {
    name: record.collection === TEMPLATES ? record.id : record.id.slice(0, at),
    version: record.revision,
    subject: source.subject,
    text: source.text,
    html: source.html,
    pushTitle: source.pushTitle,
    createdAt: new Date(record.updatedAt).toISOString(),
  };
}

/** Liquid's message, less the path of a file it never had. */
function liquidMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error))
    .replace(/\s+/g, ' ')
    .slice(0, 300);
}

function invalid(field: string, message: string): NotificationError {
  return new NotificationError('INVALID_TEMPLATE', field, message);
}

function unknownTemplate(name: string, field: string): NotificationError {
  return new NotificationError(
    'UNKNOWN_TEMPLATE',
    field,
    `there is no template ${JSON.stringify(name.slice(0, 100))}; create it with PUT /api/templates/${encodeURIComponent(name.slice(0, 100))}`,
  );
}

import type { StandardSchemaV1 } from '@standard-schema/spec';
import { InvalidPayloadError } from '../errors/invalid-payload.js';
import { PermanentError } from '../errors/permanent.js';
import { describe, InvalidOptionError } from '../options-check.js';

/** Issues named in one error; a payload wrong everywhere says how many more there are. */
const MAX_ISSUES_NAMED = 5;

/** A definition's name and schema: what the checks here read. */
interface Schematic {
  name: string;
  schema?: StandardSchemaV1;
}

/** Refuses a `schema` that is not a Standard Schema, when the definition is made. */
export function checkSchema(where: string, schema: unknown): void {
  const props = (schema as Partial<StandardSchemaV1> | null)?.['~standard'];
  if (props?.version === 1 && typeof props.validate === 'function') return;
  throw new InvalidOptionError(
    `${where}.schema`,
    `must be a Standard Schema (version 1), such as a Zod 4, Valibot 1 or ArkType 2 schema, got ${describe(schema)}`,
  );
}

/**
 * Checks a payload at enqueue against the definition's schema: returns null when it passes (or
 * there is no schema), a promise for an async schema, and throws an InvalidPayloadError naming the
 * path of each issue. The payload is stored as given, not as the schema's output: see parseStored.
 */
export function checkPayload(definition: Schematic, payload: unknown): Promise<void> | null {
  const { schema } = definition;
  if (schema === undefined) return null;
  const result = schema['~standard'].validate(payload);
  if (!(result instanceof Promise)) return refuseIssues(definition, result);
  return result.then((settled) => {
    refuseIssues(definition, settled);
  });
}

/**
 * The schema's output for a stored payload, which `run` gets. A payload the schema refuses (stored
 * by an older version of the task, or by hand) fails the task for good: running it again would
 * read the same payload.
 */
export function parseStored(
  definition: Schematic,
  payload: unknown,
): { value: unknown } | Promise<{ value: unknown }> {
  const { schema } = definition;
  if (schema === undefined) return { value: payload };
  const stored = (result: StandardSchemaV1.Result<unknown>) => {
    try {
      refuseIssues(definition, result);
    } catch (error) {
      throw new PermanentError(
        `${(error as Error).message}. The stored payload no longer matches the schema (it was enqueued by an older version of the task, or written by hand): enqueue it again in the current shape, or accept the old shape in the schema`,
        { cause: error },
      );
    }
    return { value: (result as StandardSchemaV1.SuccessResult<unknown>).value };
  };
  const result = schema['~standard'].validate(payload);
  return result instanceof Promise ? result.then(stored) : stored(result);
}

function refuseIssues(definition: Schematic, result: StandardSchemaV1.Result<unknown>): null {
  const { issues } = result;
  if (!issues) return null;
  const named = issues.slice(0, MAX_ISSUES_NAMED).map((issue) => ({
    path: issuePath(issue),
    message: issue.message,
  }));
  const more = issues.length > named.length ? `; and ${issues.length - named.length} more` : '';
  const first = named[0] ?? { path: 'payload', message: 'is refused' };
  throw new InvalidPayloadError(
    first.path,
    first.message,
    `${named.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}${more} (the schema of task ${JSON.stringify(definition.name)} refused the payload)`,
  );
}

/** Where an issue is, as a path into the payload: `payload.user.emails[0]`. */
function issuePath(issue: StandardSchemaV1.Issue): string {
  let path = 'payload';
  for (const segment of issue.path ?? []) {
    const key = typeof segment === 'object' ? segment.key : segment;
    if (typeof key === 'number') path += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) path += `.${key}`;
    else path += `[${typeof key === 'string' ? JSON.stringify(key) : String(key)}]`;
  }
  return path;
}

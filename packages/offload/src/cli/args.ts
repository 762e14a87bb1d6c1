import { parseArgs } from 'node:util';
import { closestName } from '../options-check.js';

/** A mistake in how a command was called: exit code 2, with the usage of that command. */
export class UsageError extends Error {}

/** An option of a command: `--name VALUE` (string) or `--name` (boolean). */
export interface OptionSpec {
  type: 'string' | 'boolean';
}

export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean;
};

export interface ParsedArgs<O extends Record<string, OptionSpec>> {
  values: OptionValues<O>;
  positionals: string[];
  /** `--help` or `-h` was given: print the usage, whatever else was. */
  help: boolean;
}

/**
 * Reads a command's arguments. Every command takes `--help` (`-h`). A mistake throws a
 * `UsageError` that says what to type instead: an unknown option names the closest known one,
 * an option's missing or extra value is named as such.
 */
export function parseCommandArgs<O extends Record<string, OptionSpec>>(
  args: string[],
  options: O,
  { positionals: allowPositionals = false } = {},
): ParsedArgs<O> {
  const known: Record<string, OptionSpec & { short?: string }> = {
    ...options,
    help: { type: 'boolean', short: 'h' },
  };
  // Not strict: the tokens are checked here, to say more than parseArgs's own messages do.
  const { tokens } = parseArgs({
    args,
    options: known,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((token) => token.kind === 'option' && token.name === 'help')) {
    return { values: {}, positionals: [], help: true };
  }
  const values: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      if (!allowPositionals)
        throw new UsageError(`unexpected argument ${JSON.stringify(token.value)}`);
      positionals.push(token.value);
      continue;
    }
    const spec = Object.hasOwn(known, token.name) ? known[token.name] : undefined;
    if (spec === undefined) throw new UsageError(unknownOption(token.rawName, Object.keys(known)));
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`);
      values[token.name] = true;
    } else {
      // `--state --json`: the next option is not taken for a value; `--state=-x` gives one.
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('-'))) {
        throw new UsageError(`${token.rawName} needs a value`);
      }
      values[token.name] = token.value;
    }
  }
  return { values: values as OptionValues<O>, positionals, help: false };
}

/** "unknown option --stat; did you mean --state?" */
export function unknownOption(given: string, known: readonly string[]): string {
  const guess = given.startsWith('--') ? closestName(given.slice(2), known) : undefined;
  return `unknown option ${given}${guess === undefined ? '' : `; did you mean --${guess}?`}`;
}

/** `unknown command "taks"; did you mean tasks?` and the like, for a word out of `known`. */
export function unknownWord(what: string, given: string, known: readonly string[]): string {
  const guess = closestName(given, known);
  return `unknown ${what} ${JSON.stringify(given)}${guess === undefined ? '' : `; did you mean ${guess}?`}`;
}

import type { ServerResponse } from 'node:http';
import type { Background } from './background.js';
import { errorAnswer, writeAnswer } from './answers.js';

/** The methods that write a response's head or body: the first call of any of them is held. */
const WRITES = ['writeHead', 'write', 'end', 'flushHeaders'] as const;
type Write = (typeof WRITES)[number];
type AnyWrite = (this: ServerResponse, ...args: unknown[]) => unknown;

/**
 * Where the response of a request stands: nothing written yet; its first write held while the
 * request's tasks are stored; written through; or replaced by an error answer because they could
 * not be stored (the handler's writes then go nowhere).
 */
export type HoldState = 'open' | 'held' | 'written' | 'refused';

export interface Hold {
  readonly state: HoldState;
  /** Whether the handler called `end()` (perhaps held). */
  readonly ended: boolean;
}

/**
 * Makes `res` store the tasks of `background` before anything of it is written: the first call
 * of `writeHead`, `write`, `end` or `flushHeaders` closes `background` and, if it has tasks to
 * store, holds that call and those after it until they are stored, then makes them in order. If
 * they cannot be stored, the response becomes the error answer (a 503 for a store that failed)
 * and what the handler writes is dropped. `answered` is called at the first write of every
 * response.
 */
export function holdFirstWrite(
  res: ServerResponse,
  background: Background,
  answered: () => void,
): Hold {
  const own = res as unknown as Record<Write, AnyWrite>;
  const originals = WRITES.map((name) => own[name]);
  const held: [AnyWrite, unknown[]][] = [];
  let state: HoldState = 'open';
  let ended = false;

  const restore = () => {
    for (let i = 0; i < WRITES.length; i++) own[WRITES[i]!] = originals[i]!;
  };
  const release = () => {
    state = 'written';
    restore();
    for (const [write, args] of held) write.apply(res, args);
    held.length = 0;
  };
  const refuse = (error: unknown) => {
    state = 'refused';
    held.length = 0;
    // The handler's writes, now and later, go nowhere: the answer is the error.
    restore();
    for (const [name, value] of Object.entries(res.getHeaders())) {
      if (value !== undefined) res.removeHeader(name);
    }
    writeAnswer(res, errorAnswer(error));
    for (const name of WRITES) own[name] = dropped(name, res);
  };

  for (let i = 0; i < WRITES.length; i++) {
    const name = WRITES[i]!;
    const original = originals[i]!;
    own[name] = function (this: ServerResponse, ...args: unknown[]) {
      if (name === 'end') ended = true;
      if (state === 'held') {
        held.push([original, args]);
        return heldResult(name, res);
      }
      answered();
      const committing = background.close();
      if (!committing) {
        state = 'written';
        restore();
        return original.apply(res, args);
      }
      state = 'held';
      held.push([original, args]);
      committing.then(release, refuse);
      return heldResult(name, res);
    };
  }
  return {
    get state() {
      return state;
    },
    get ended() {
      return ended;
    },
  };
}

/** What a held write returns: `write` that more may come (it is buffered), the others `res`. */
function heldResult(name: Write, res: ServerResponse): unknown {
  if (name === 'write') return true;
  return name === 'flushHeaders' ? undefined : res;
}

/** A write after the error answer: dropped, its callback called, so a stream piped in ends. */
function dropped(name: Write, res: ServerResponse): AnyWrite {
  return (...args: unknown[]) => {
    const callback = args.findLast((arg) => typeof arg === 'function') as (() => void) | undefined;
    if (callback && name !== 'writeHead') queueMicrotask(callback);
    return heldResult(name, res);
  };
}

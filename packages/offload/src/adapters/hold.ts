import type { ServerResponse } from 'node:http';
import type { Background } from './background.js';
import { errorAnswer } from './answers.js';

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

type AnyWrite = (this: ServerResponse, ...args: unknown[]) => unknown;

/** One response's hold: its state, and the write methods it had before (to call through). */
class ResponseHold implements Hold {
  state: HoldState = 'open';
  ended = false;
  /** The calls made while held, in order: [method, arguments]. */
  held: [AnyWrite, unknown[]][] | null = null;
  readonly writeHead: AnyWrite;
  readonly write: AnyWrite;
  readonly end: AnyWrite;
  readonly flushHeaders: AnyWrite;

  constructor(
    readonly res: ServerResponse,
    readonly background: Background,
    readonly answered: () => void,
  ) {
    const own = res as unknown as Record<Write, AnyWrite>;
    this.writeHead = own.writeHead;
    this.write = own.write;
    this.end = own.end;
    this.flushHeaders = own.flushHeaders;
  }
}

type Write = 'writeHead' | 'write' | 'end' | 'flushHeaders';
const kHold = Symbol('offload.hold');
type HeldResponse = ServerResponse & { [kHold]: ResponseHold };

/**
 * Makes `res` store the tasks of `background` before anything of it is written: the first call
 * of `writeHead`, `write`, `end` or `flushHeaders` closes `background` and, if it has tasks to
 * store, holds that call and those after it until they are stored, then makes them in order. If
 * they cannot be stored, the response becomes the error answer (a 503 for a store that failed)
 * and what the handler writes is dropped. `answered` is called at the first write of every
 * response.
 *
 * The methods stay in place afterwards and call through, so that a wrapper another middleware
 * puts around them later (compression, say) keeps working.
 */
export function holdFirstWrite(
  res: ServerResponse,
  background: Background,
  answered: () => void,
): Hold {
  const hold = new ResponseHold(res, background, answered);
  (res as HeldResponse)[kHold] = hold;
  const own = res as unknown as Record<Write, AnyWrite>;
  own.writeHead = heldWriteHead;
  own.write = heldWrite;
  own.end = heldEnd;
  own.flushHeaders = heldFlushHeaders;
  return hold;
}

// One function of each for every response (they find theirs through `this`), so that holding a
// response allocates no closure.
function heldWriteHead(this: ServerResponse, ...args: unknown[]): unknown {
  return call((this as HeldResponse)[kHold], 'writeHead', args);
}
function heldWrite(this: ServerResponse, ...args: unknown[]): unknown {
  return call((this as HeldResponse)[kHold], 'write', args);
}
function heldEnd(this: ServerResponse, ...args: unknown[]): unknown {
  const hold = (this as HeldResponse)[kHold];
  hold.ended = true;
  return call(hold, 'end', args);
}
function heldFlushHeaders(this: ServerResponse): unknown {
  return call((this as HeldResponse)[kHold], 'flushHeaders', []);
}

function call(hold: ResponseHold, name: Write, args: unknown[]): unknown {
  const original = hold[name];
  switch (hold.state) {
    case 'written':
      return original.apply(hold.res, args);
    case 'refused':
      return dropped(hold.res, name, args);
    case 'held':
      hold.held!.push([original, args]);
      return heldResult(hold.res, name);
  }
  hold.answered();
  const committing = hold.background.close();
  if (!committing) {
    hold.state = 'written';
    return original.apply(hold.res, args);
  }
  hold.state = 'held';
  hold.held = [[original, args]];
  committing.then(
    () => release(hold),
    (error: unknown) => refuse(hold, error),
  );
  return heldResult(hold.res, name);
}

/**
 * The tasks are stored: the held calls are made, in order. One that throws (a second
 * `writeHead`, say) would have thrown to the handler; now that it is too late for that, it cuts
 * off a response left unfinished, and the calls after it are dropped.
 */
function release(hold: ResponseHold): void {
  hold.state = 'written';
  const calls = hold.held!;
  hold.held = null;
  const { res } = hold;
  try {
    for (const [write, args] of calls) write.apply(res, args);
  } catch (error) {
    if (!res.writableEnded) res.destroy(error as Error);
  }
}

/** The tasks could not be stored: the answer is the error, and the handler's writes go nowhere. */
function refuse(hold: ResponseHold, error: unknown): void {
  hold.state = 'refused';
  hold.held = null;
  const { res } = hold;
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const answer = errorAnswer(error);
  const body = JSON.stringify(answer.body);
  hold.writeHead.call(res, answer.status, {
    ...answer.headers,
    'content-length': String(Buffer.byteLength(body)),
  });
  hold.end.call(res, body);
}

/** What a held write returns: `write` that more may come (it is buffered), the others `res`. */
function heldResult(res: ServerResponse, name: Write): unknown {
  if (name === 'write') return true;
  return name === 'flushHeaders' ? undefined : res;
}

/** A write after the error answer: dropped, its callback called, so a stream piped in ends. */
function dropped(res: ServerResponse, name: Write, args: unknown[]): unknown {
  const callback = args.findLast((arg) => typeof arg === 'function') as (() => void) | undefined;
  if (callback && name !== 'writeHead') queueMicrotask(callback);
  return heldResult(res, name);
}

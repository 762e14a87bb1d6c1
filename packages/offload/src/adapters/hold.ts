import { IncomingMessage, ServerResponse } from 'node:http';
import type { Background } from './background.js';
import { errorAnswer } from './answers.js';

/**
 * Where the response of a request stands: nothing written yet; its first write held while the
 * request's tasks are stored; written through; or replaced by an error answer because they could
 * not be stored (the handler's writes then go nowhere).
 */
export type HoldState = 'open' | 'held' | 'written' | 'refused';

export interface Hold {
  /** The tasks of the request whose response this is. */
  readonly background: Background;
  readonly state: HoldState;
  /** Whether the handler called `end()` (perhaps held). */
  readonly ended: boolean;
}

type AnyWrite = (this: ServerResponse, ...args: unknown[]) => unknown;
type Write = 'writeHead' | 'write' | 'end' | 'flushHeaders';
const WRITES: readonly Write[] = ['writeHead', 'write', 'end', 'flushHeaders'];
/** The write methods a response had before it was held, which a hold calls through to. */
type Writes = Record<Write, AnyWrite>;

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
    writes: Writes,
  ) {
    this.writeHead = writes.writeHead;
    this.write = writes.write;
    this.end = writes.end;
    this.flushHeaders = writes.flushHeaders;
  }
}

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
 * The methods are put on `res` itself and stay in place afterwards, calling through, so that a
 * wrapper another middleware puts around them later (compression, say) keeps working.
 */
export function holdFirstWrite(
  res: ServerResponse,
  background: Background,
  answered: () => void,
): Hold {
  const hold = new ResponseHold(res, background, answered, res as unknown as Writes);
  (res as HeldResponse)[kHold] = hold;
  const own = res as unknown as Writes;
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
  return call((this as HeldResponse)[kHold], 'end', args);
}
function heldFlushHeaders(this: ServerResponse): unknown {
  return call((this as HeldResponse)[kHold], 'flushHeaders', []);
}

/** Responses held through their prototype (see holdThroughPrototype), and their holds. */
const holds = new WeakMap<object, ResponseHold>();
/** The prototypes prepared so, and the write methods they had before. */
const prepared = new WeakMap<object, Writes>();

/**
 * As `holdFirstWrite`, for responses that a framework gives prototypes of its own between theirs
 * and `ServerResponse.prototype` (Express: each app's `app.response`, over one shared by every
 * app and sub-app). The write methods are put once on the lowest of these, the shared one, where
 * they call through for a response that is not held, and the hold is found by the response:
 * adding properties to a response whose prototype was set as Express sets it costs microseconds
 * each in V8, where this costs one WeakMap entry. A response with no such prototype is held as
 * `holdFirstWrite` holds it.
 */
export function holdThroughPrototype(
  res: ServerResponse,
  background: Background,
  answered: () => void,
): Hold {
  const prototype = lowestOwnPrototype(res, ServerResponse.prototype);
  if (!prototype) return holdFirstWrite(res, background, answered);
  const writes = prepared.get(prototype) ?? prepare(prototype);
  const hold = new ResponseHold(res, background, answered, writes);
  holds.set(res, hold);
  return hold;
}

/**
 * Defines `name` on the framework's lowest prototype of `req` (as `holdThroughPrototype` does for
 * responses), as a getter of `read(req)`; once per prototype. False when `req` has none.
 */
export function defineOnRequests(
  req: IncomingMessage,
  name: string,
  read: (req: IncomingMessage) => unknown,
): boolean {
  const prototype = lowestOwnPrototype(req, IncomingMessage.prototype);
  if (!prototype) return false;
  if (!Object.prototype.hasOwnProperty.call(prototype, name)) {
    Object.defineProperty(prototype, name, {
      configurable: true,
      get(this: IncomingMessage) {
        return read(this);
      },
    });
  }
  return true;
}

/** The prototype of `object` right above `base` in its chain, unless that is `base` itself. */
function lowestOwnPrototype(object: object, base: object): object | null {
  let prototype = Object.getPrototypeOf(object) as object | null;
  if (prototype === base) return null;
  while (prototype) {
    const above = Object.getPrototypeOf(prototype) as object | null;
    if (above === base) return prototype;
    prototype = above;
  }
  return null;
}

/** The hold of a response held through its prototype, if it is. */
export function holdOf(res: ServerResponse | undefined): Hold | undefined {
  return res && holds.get(res);
}

function prepare(prototype: object): Writes {
  const inherited = prototype as Writes;
  const writes: Writes = {
    writeHead: inherited.writeHead,
    write: inherited.write,
    end: inherited.end,
    flushHeaders: inherited.flushHeaders,
  };
  for (const name of WRITES) {
    const original = writes[name];
    Object.defineProperty(prototype, name, {
      configurable: true,
      writable: true,
      value: function (this: ServerResponse, ...args: unknown[]): unknown {
        const hold = holds.get(this);
        return hold ? call(hold, name, args) : original.apply(this, args);
      },
    });
  }
  prepared.set(prototype, writes);
  return writes;
}

function call(hold: ResponseHold, name: Write, args: unknown[]): unknown {
  if (name === 'end') hold.ended = true;
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

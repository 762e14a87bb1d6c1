import { OffloadError } from 'offload';

/**
 * Why the service could not listen, naming the variable to change: Node's own messages
 * (`listen EADDRINUSE: address already in use 127.0.0.1:8000`, `getaddrinfo ENOTFOUND db.local`)
 * name neither PORT nor HOST. Errors that did not come from listening are returned as they are.
 */
export function listenError(error: unknown, host: string, port: number): unknown {
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  const where = `PORT ${port} on ${host}`;
  const anyAddress = '0.0.0.0 to listen on every address, or 127.0.0.1 for this machine only';
  let message: string | undefined;
  if (syscall === 'listen') {
    if (code === 'EADDRINUSE')
      message = `${where} is in use by another process; stop it or set PORT to a free port`;
    else if (code === 'EACCES')
      message = `${where} needs privileges this process lacks (as ports below 1024 do); set PORT to 1024 or above`;
    else if (code === 'EADDRNOTAVAIL')
      message = `HOST ${host} is not an address of this machine; set HOST to one of its addresses: ${anyAddress}`;
  } else if (syscall === 'getaddrinfo') {
    message = `HOST ${host} could not be resolved to an address (${String(code)}); set HOST to an address of this machine: ${anyAddress}`;
  }
  return message === undefined
    ? error
    : new OffloadError('LISTEN_FAILED', message, { cause: error });
}

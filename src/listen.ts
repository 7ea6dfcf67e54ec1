import type { FastifyInstance } from 'fastify';

/** A listener that could not start, named by the config keys that chose its address. */
export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

/**
 * Listens on the address config keys chose; a taken or refused address names those keys, so the operator
 * knows which line of the config to change (`listen EADDRINUSE 127.0.0.1:8081` alone does not say).
 */
export async function listenAt(
  app: FastifyInstance,
  address: { host: string; port: number },
  keyPrefix: string,
  portKey = 'port',
  hostKey = 'host',
): Promise<string> {
  try {
    return await app.listen({ host: address.host, port: address.port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${keyPrefix}.${hostKey}:${keyPrefix}.${portKey} = ${address.host}:${address.port}`;
    if (code === 'EADDRINUSE') throw new ListenError(`${where} is already in use by another process`);
    if (code === 'EACCES')
      throw new ListenError(`${where}: permission denied (ports below 1024 need privileges)`);
    if (code === 'EADDRNOTAVAIL') throw new ListenError(`${where}: no such address on this machine`);
    throw err;
  }
}

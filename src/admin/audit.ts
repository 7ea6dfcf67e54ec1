import type { FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';

export interface AuditEntry {
  action: string;
  filter?: Record<string, unknown>;
  count?: number;
  ids?: string[];
  outcome?: 'ok' | 'denied' | 'failed';
  [extra: string]: unknown;
}

export type Audit = (req: FastifyRequest, entry: AuditEntry) => void;

// A bulk replay can touch thousands of jobs: the line names the first ones and the count says the rest.
const MAX_IDS_LOGGED = 20;

/**
 * One `audit` log line per admin action, with the identity that did it: the record of which identities
 * actually touched what. Filters are logged as given (they hold ids, names and times, never secrets).
 */
export function createAudit(log: Logger): Audit {
  const audit = log.child({ component: 'audit' });
  return (req, entry) => {
    const id = req.identity;
    const { ids, ...rest } = entry;
    audit.info(
      {
        audit: true,
        identity: id ? id.name : null,
        identityKind: id?.kind ?? null,
        // Not `role`: the admin logger's own binding already uses that key for the process role, and a line
        // with a key twice is kept half or refused by log pipelines.
        actorRole: id?.role ?? null,
        via: req.authVia ?? null,
        ip: req.ip,
        outcome: 'ok',
        ...rest,
        ...(ids ? { ids: ids.slice(0, MAX_IDS_LOGGED), idsTruncated: ids.length > MAX_IDS_LOGGED } : {}),
      },
      `audit ${entry.action}`,
    );
  };
}

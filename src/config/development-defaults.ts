import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError } from '../errors/index.js';
import type { Config } from './types.js';

/**
 * The credentials config/hookrelay.example.yaml falls back to when its environment variables are unset. They are
 * public (in the repository and the README), so a relay using them accepts webhooks and admin sign-ins from
 * anyone who can reach it.
 */
export const EXAMPLE_ADMIN_TOKENS: readonly string[] = ['dev-admin-token-change-me'];
export const EXAMPLE_SOURCE_SECRETS: readonly string[] = ['dev-cloud-secret', 'dev-dc-secret'];

export interface DevelopmentDefault {
  /** The config key that holds the example's value, e.g. `sources[0].secrets[0]`. */
  key: string;
  /** The listener key that exposes it: `admin.host` for tokens, `ingress.host` for secrets. */
  listener: 'admin.host' | 'ingress.host';
}

/** Every place where the config still holds one of the example's development credentials. */
export function developmentDefaults(config: Config): DevelopmentDefault[] {
  const found: DevelopmentDefault[] = [];
  config.admin.tokens.forEach((t, i) => {
    if (EXAMPLE_ADMIN_TOKENS.includes(t.token))
      found.push({ key: `admin.tokens[${i}].token`, listener: 'admin.host' });
  });
  config.sources.forEach((s, i) => {
    s.secrets.forEach((secret, j) => {
      if (EXAMPLE_SOURCE_SECRETS.includes(secret)) {
        found.push({ key: `sources[${i}].secrets[${j}]`, listener: 'ingress.host' });
      }
    });
  });
  return found;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: only this machine can connect. Anything else may not. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIPv4(bare)) return bare.startsWith('127.');
  if (isIPv6(bare)) return bare === '::1' || /^::ffff:127\./.test(bare);
  return false;
}

/**
 * Start-up check: warns about every development credential in use, and refuses (ConfigError, naming the keys)
 * when one of them is exposed by a listener this process opens on a non-loopback address.
 */
export function checkDevelopmentDefaults(
  config: Config,
  listeners: { ingress: boolean; admin: boolean },
  warn: (found: DevelopmentDefault) => void,
): void {
  const problems: string[] = [];
  for (const found of developmentDefaults(config)) {
    warn(found);
    const listening = found.listener === 'admin.host' ? listeners.admin : listeners.ingress;
    const host = found.listener === 'admin.host' ? config.admin.host : config.ingress.host;
    if (listening && !isLoopbackHost(host)) {
      problems.push(
        `${found.key}: is the example config's development value and ${found.listener} is ${host} (not loopback): ` +
          'set a real value (the example reads HOOKRELAY_ADMIN_TOKEN, BB_SECRET, BB_DC_SECRET) or listen on 127.0.0.1',
      );
    }
  }
  if (problems.length) throw new ConfigError(problems);
}

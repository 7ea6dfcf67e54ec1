import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors/index.js';

/** The file every command reads when neither `--config` nor HOOKRELAY_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = 'hookrelay.yaml';

/** Commander's `--config` option, the same on every command that reads the config. */
export const CONFIG_OPTION = [
  '-c, --config <file>',
  `config file (YAML; default: $HOOKRELAY_CONFIG, then ./${DEFAULT_CONFIG_FILE})`,
] as const;

/**
 * Which config file a command reads: `--config`, else HOOKRELAY_CONFIG, else ./hookrelay.yaml when it exists.
 * With none of them the error says all three ways, so nobody has to guess the flag.
 */
export function resolveConfigPath(
  given: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): string {
  if (given) return given;
  if (env.HOOKRELAY_CONFIG) return env.HOOKRELAY_CONFIG;
  const fallback = resolve(cwd, DEFAULT_CONFIG_FILE);
  if (existsSync(fallback)) return fallback;
  throw new ConfigError([
    `no config file: pass --config <file>, set HOOKRELAY_CONFIG, or create ./${DEFAULT_CONFIG_FILE} (start from config/hookrelay.example.yaml)`,
  ]);
}

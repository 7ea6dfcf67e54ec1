import type { Platform } from '../config/types.js';

// The last `"full_name":"…"` of a Cloud body: the top-level repository comes after a pull request's source and
// destination repositories in Bitbucket's serialisation.
const CLOUD_FULL_NAME = /"full_name"\s*:\s*"([^"\\]{1,200})"/g;
// Data Center serialises a repository as {"slug":…, …, "project":{"key":…}} (its REST entity's field order).
const DC_REPOSITORY =
  /"repository"\s*:\s*\{\s*"slug"\s*:\s*"([^"\\]{1,200})"[\s\S]*?"project"\s*:\s*\{\s*"key"\s*:\s*"([^"\\]{1,100})"/;

/**
 * The repository an event is most likely about, read from the raw bytes without parsing them (the ingress does
 * not parse: the fan-out does): only a hint for choosing the shard on a Redis Cluster, so that the event is
 * appended in the shard its repository's jobs, dedupe and loop-guard keys live in. A wrong or missing hint
 * costs a move at fan-out (keys.ts), never a wrong decision. Null when nothing looks like a repository.
 */
export function repositoryHint(platform: Platform, body: Buffer): string | null {
  const text = body.toString('latin1');
  if (platform === 'datacenter') {
    const m = DC_REPOSITORY.exec(text);
    return m ? `${m[2]}/${m[1]}` : null;
  }
  let last: string | null = null;
  for (const m of text.matchAll(CLOUD_FULL_NAME)) last = m[1]!;
  return last;
}

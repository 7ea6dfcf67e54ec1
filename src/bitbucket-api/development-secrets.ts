/**
 * The webhook secrets `config/hookrelay.example.yaml` falls back to (`${BB_SECRET:-dev-cloud-secret}`, …) for a
 * local try-out. Anyone who has read the example can sign webhooks with them, so no Bitbucket hook may carry one.
 * A unit test keeps this list equal to the example's defaults.
 */
export const DEVELOPMENT_SECRETS: readonly string[] = ['dev-cloud-secret', 'dev-dc-secret'];

export function isDevelopmentSecret(secret: string): boolean {
  return DEVELOPMENT_SECRETS.includes(secret);
}

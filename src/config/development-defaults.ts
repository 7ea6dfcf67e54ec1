/**
 * The credentials config/hookrelay.example.yaml falls back to when its environment variables are unset. They are
 * public (in the repository and the README), so anyone can sign webhooks with them: no Bitbucket hook may carry
 * one. test/unit/development-secrets.test.ts keeps this list equal to the example's defaults.
 */
export const EXAMPLE_SOURCE_SECRETS: readonly string[] = ['dev-cloud-secret', 'dev-dc-secret'];

declare module 'autocannon' {
  // biome-ignore lint/suspicious/noExplicitAny: autocannon ships no types; the bench uses a handful of fields
  const autocannon: (opts: Record<string, unknown>) => Promise<any>;
  export default autocannon;
}

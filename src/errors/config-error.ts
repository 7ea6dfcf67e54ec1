/** A config file that cannot be used; `problems` each name the path of the bad key. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[], file?: string) {
    super(`${file ? `${file}: ` : ''}invalid config\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A command-line option that cannot work as given: the CLI exits with code 2, having written nothing. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

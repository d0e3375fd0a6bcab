/** Input the engine cannot use as given (a model of the wrong shape, a checkpoint that does not fit, …): retrying cannot help. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

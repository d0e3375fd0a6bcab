// What the dataset readers throw: the file and what is wrong with it.
export class DatasetError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'DatasetError';
  }
}

/** A dataset file whose bytes are not the ones the manifest (and the policy) pinned: changed after it was checked. */
export class DatasetDigestMismatch extends DatasetError {
  readonly code = 'DatasetDigestMismatch';
  constructor(file: string, actual: string, expected: string) {
    super(
      file,
      `SHA-256 ${actual} differs from ${expected}, which the manifest pinned: the file changed after the data stage checked it`,
    );
    this.name = 'DatasetDigestMismatch';
  }
}

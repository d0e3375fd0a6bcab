// Predicted classes from logits: the lowest index among equal maxima, as PyTorch's and NumPy's argmax pick it.
// Kept under metrics so attacks and training both import it from here (neither imports the other for it).

export function argmax(values: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (values[offset + j] > values[offset + best]) best = j;
  return best;
}

/** How many rows of `logits` (one row of `classes` values per label) predict their label. */
export function countCorrect(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (argmax(logits, i * classes, classes) === labels[i]) correct++;
  return correct;
}

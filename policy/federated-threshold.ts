// How many of a round's share holders must reveal to complete secure aggregation after a drop: a majority, so two
// disjoint groups of that size cannot exist (each holder reveals once per round, one secret per client), and at
// least 2. One rule for the workflow, the clients and the server; the engine's sharing takes it as a parameter.

export function shareThreshold(holders: number): number {
  return Math.max(2, Math.floor(holders / 2) + 1);
}

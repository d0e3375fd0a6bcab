import type { AttackName } from './run.js';

/** Attacks that need the engine to differentiate the model; Square Attack needs forward passes only. */
export const ATTACKS_WITH_GRADIENTS: readonly AttackName[] = ['fgsm', 'pgd', 'deepfool'];

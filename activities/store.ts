// The artifact store lives beside the engine's other file I/O, so the guarded server reads from it too.
export { ArtifactStore } from '../engine/io/artifact-store.js';

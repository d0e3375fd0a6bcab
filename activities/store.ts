// The artifact store lives beside the engine's other file I/O, so the guarded server reads from it too.
export { LocalArtifactStore, type ArtifactStore, type StoredArtifact } from '../engine/io/artifact-store.js';
export { openArtifactStore } from '../engine/io/open-artifact-store.js';

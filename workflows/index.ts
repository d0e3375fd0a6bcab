export { secmlopsPipeline } from './pipeline.js';
export { planStage, dataStage, trainStage, evaluateStage, releaseStage } from './stages.js';
export { secmlopsMonitor } from './monitor.js';
export { federatedTraining } from './federated.js';
export { experimentGrid, experimentCell } from './experiment.js';

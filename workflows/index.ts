export { secmlopsPipeline } from './pipeline.js';
export { planStage, dataStage, evaluateStage, releaseStage } from './stages.js';

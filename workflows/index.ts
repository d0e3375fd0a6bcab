export { secmlopsPipeline } from './pipeline.js';
export { planStage, dataStage, releaseStage } from './stages.js';

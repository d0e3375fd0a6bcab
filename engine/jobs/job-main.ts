// An engine job process: one request in, progress and a result out over IPC. It exits when its parent's IPC channel
// closes, so a killed worker leaves no job behind; a crash inside onnxruntime ends only this process.
import { evaluateJob } from './evaluate.js';
import type { JobMessage, JobRequest } from './protocol.js';

const send = (m: JobMessage) => process.send?.(m);

process.on('disconnect', () => process.exit(1));
process.once('message', (req: JobRequest) => {
  void (async () => {
    try {
      if (req.kind !== 'evaluate') throw new Error(`unknown job kind ${(req as { kind: string }).kind}`);
      const result = await evaluateJob(req, (progress) => send({ type: 'progress', progress }));
      send({ type: 'result', result });
    } catch (e) {
      send({ type: 'error', message: (e as Error).message });
    } finally {
      process.disconnect?.();
    }
  })();
});

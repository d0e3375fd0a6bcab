// An engine job process: one request in, progress and a result out over IPC. It exits when its parent's IPC channel
// closes, so a killed worker leaves no job behind; a crash inside onnxruntime ends only this process.
import { evaluateJob } from './evaluate.js';
import { trainJob } from './train.js';
import type { JobMessage, JobRequest } from './protocol.js';

const send = (m: JobMessage) => process.send?.(m);

process.on('disconnect', () => process.exit(1));
process.once('message', (req: JobRequest) => {
  void (async () => {
    try {
      let result: unknown;
      if (req.kind === 'evaluate') result = await evaluateJob(req, (progress) => send({ type: 'progress', progress }));
      else if (req.kind === 'train') {
        result = await trainJob(req, {
          progress: (progress) => send({ type: 'train-progress', progress }),
          checkpoint: (path, epoch, step) => send({ type: 'checkpoint', path, epoch, step }),
        });
      } else throw new Error(`unknown job kind ${(req as { kind: string }).kind}`);
      send({ type: 'result', result });
    } catch (e) {
      send({ type: 'error', message: (e as Error).message });
    } finally {
      process.disconnect?.();
    }
  })();
});

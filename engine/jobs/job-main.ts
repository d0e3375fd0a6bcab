// An engine job process: one request in, progress and a result out over IPC. It exits when its parent's IPC channel
// closes, so a killed worker leaves no job behind; a crash inside onnxruntime ends only this process.
import { AutodiffError } from '../autodiff/types.js';
import { DatasetError } from '../data/idx.js';
import { OnnxError } from '../onnx/model.js';
import { evaluateJob } from './evaluate.js';
import { InputError } from '../input-error.js';
import { sanitiseJob } from './sanitise.js';
import { trainJob } from './train.js';
import { experimentJob } from './experiment.js';
import type { JobMessage, JobRequest } from './protocol.js';

const send = (m: JobMessage) => process.send?.(m);

/** Errors that describe the job's input rather than a failure of the run. */
function isInputError(e: unknown): boolean {
  return e instanceof OnnxError || e instanceof DatasetError || e instanceof AutodiffError || e instanceof InputError;
}

process.on('disconnect', () => process.exit(1));
process.once('message', (req: JobRequest) => {
  void (async () => {
    try {
      let result: unknown;
      if (req.kind === 'evaluate') result = await evaluateJob(req, (progress) => send({ type: 'progress', progress }));
      else if (req.kind === 'sanitise')
        result = await sanitiseJob(req, (progress) => send({ type: 'progress', progress }));
      else if (req.kind === 'experiment')
        result = await experimentJob(req, (progress) => send({ type: 'progress', progress }));
      else if (req.kind === 'train') {
        result = await trainJob(req, {
          progress: (progress) => send({ type: 'train-progress', progress }),
          checkpoint: (path, epoch, step) => send({ type: 'checkpoint', path, epoch, step }),
        });
      } else throw new Error(`unknown job kind ${(req as { kind: string }).kind}`);
      send({ type: 'result', result });
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      send({
        type: 'error',
        message: (e as Error).message,
        permanent: isInputError(e),
        ...(typeof code === 'string' && isInputError(e) ? { code } : {}),
      });
    } finally {
      process.disconnect?.();
    }
  })();
});

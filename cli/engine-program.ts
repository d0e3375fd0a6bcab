// The engine's commands (train, attack, poison, detect-poison, privacy, inspect): they run the engine in this
// process, with no Temporal, as a library user would. Each loads its implementation only when it runs, so other
// commands start without loading onnxruntime.
import type { Command } from 'commander';
import type { LoadOptions } from '../engine/onnx/limits.js';
import { modelLimitsFrom, withModelLimits } from './model-limits.js';

export function addEngineCommands(program: Command, int: (v: string) => number): void {
  program
    .command('train')
    .description('train a model, plain or adversarially, and export it as a deployable ONNX model')
    .requiredOption('--data <dir>', 'folder with the Fashion-MNIST IDX files')
    .option('--arch <name>', 'small-cnn, wide-cnn or mlp', 'small-cnn')
    .option('--defense <name>', 'none, fgsm-rs, pgd, trades or dp-sgd', 'none')
    .option('--eps <e>', 'perturbation budget of the defense (Linf)', Number)
    .option('--pgd-steps <n>', 'PGD steps per batch for --defense pgd and trades', int, 7)
    .option('--beta <b>', 'TRADES weight of the KL term', Number, 6)
    .option(
      '--step-size <a>',
      'attack step size of the defense (default: 1.25·eps for fgsm-rs, 2.5·eps/steps for pgd and trades)',
      Number,
    )
    .option('--early-stop', 'keep the epoch with the best robust validation accuracy (PGD-10 at --eps)')
    .option('--cutmix <alpha>', 'CutMix batches: λ ~ Beta(alpha, alpha) (with none, fgsm-rs or pgd)', Number)
    .option('--cutmix-prob <p>', 'the share of batches CutMix mixes', Number, 0.5)
    .option('--distill-from <teacher>', 'distil from this ONNX teacher (its logits softened at --temperature)')
    .option(
      '--temperature <t>',
      'distillation temperature; alone: train at T (defensive distillation’s teacher)',
      Number,
    )
    .option('--alpha <a>', 'weight of the soft term with --distill-from (the rest on the hard labels)', Number, 0.9)
    .option('--epochs <n>', 'epochs', int, 8)
    .option('--batch <n>', 'batch size', int, 128)
    .option('--lr <x>', 'peak learning rate', Number, 1e-3)
    .option('--optimizer <name>', 'adam or sgd (momentum 0.9)', 'adam')
    .option('--schedule <name>', 'constant, cosine or one-cycle', 'constant')
    .option('--limit <n>', 'train on the first N images', int)
    .option('--seed <n>', 'seed for initialization, shuffling and random starts', int, 1)
    .option('--checkpoint-dir <dir>', 'write latest.ckpt here at every epoch end and every --checkpoint-every steps')
    .option('--checkpoint-every <n>', 'steps between checkpoints', int, 100)
    .option('--resume', 'continue the run in --checkpoint-dir')
    .option('--noise-multiplier <s>', 'dp-sgd: σ, the noise over the clipping norm', Number)
    .option('--clip <c>', 'dp-sgd: the largest L2 norm of one example’s gradient', Number)
    .option('--sample-rate <q>', 'dp-sgd: Poisson sampling rate per step (an epoch is ceil(1/q) steps)', Number)
    .option('--delta <d>', 'dp-sgd: δ of the (ε, δ) reported', Number, 1e-5)
    .option(
      '--target-epsilon <eps>',
      'dp-sgd: choose σ so that ε stays at most this (instead of --noise-multiplier)',
      Number,
    )
    .option('--json <file>', 'dp-sgd: write the history, test accuracy and (ε, δ) as JSON')
    .requiredOption('--out <file>', 'output model.onnx')
    .action(async (o: Parameters<typeof import('./engine-commands.js').trainCommand>[0]) => {
      const { trainCommand } = await import('./engine-commands.js');
      await trainCommand(o);
    });

  withModelLimits(program.command('attack'))
    .description('attack an ONNX model on the IDX test set; prints clean and robust accuracy')
    .requiredOption('--model <file>', 'model.onnx (first input [N, C, H, W], first output logits)')
    .requiredOption('--data <dir>', 'folder with the IDX test files')
    .requiredOption('--attack <name>', 'fgsm, pgd, deepfool, square or backdoor')
    .option('--eps <e>', 'perturbation budget', Number)
    .option('--steps <n>', 'PGD steps (default 20)', int)
    .option('--restarts <n>', 'PGD restarts (default 1)', int)
    .option('--norm <n>', 'linf or l2 (PGD)', 'linf')
    .option('--limit <n>', 'attack the first N test images', int)
    .option('--seed <n>', 'seed for random starts and squares', int, 1)
    .option('--range <min,max>', 'valid input range', '0,1')
    .option('--trigger <file>', 'backdoor: poison.json of a BadNets poisoning (its trigger and target class)')
    .option('--json <file>', 'write the results as JSON')
    .action(async (o: Parameters<typeof import('./engine-commands.js').attackCommand>[0]) => {
      const { attackCommand } = await import('./engine-commands.js');
      await attackCommand(o);
    });

  program
    .command('poison')
    .description(
      'write a poisoned copy of a dataset folder (training files poisoned, test files copied) and poison.json',
    )
    .requiredOption('--data <dir>', 'folder with the IDX training and test files')
    .requiredOption('--out <dir>', 'new folder for the poisoned copy')
    .requiredOption('--kind <kind>', 'badnets or label-flip')
    .requiredOption('--rate <r>', 'fraction of the training set to poison, in (0, 0.5]', Number)
    .option('--target <k>', 'class the trigger (or targeted flipping) maps to', int)
    .option('--source <k>', 'label-flip: poison only images of this class (needs --target)', int)
    .option('--patch <n>', 'badnets: side of the square trigger, in pixels', int, 3)
    .option('--position <p>', 'badnets: tl, tr, bl, br or x,y (top-left corner of the patch)', 'br')
    .option('--value <v>', 'badnets: pixel value of the trigger (0-255)', int, 255)
    .option('--classes <n>', 'number of classes', int, 10)
    .option('--seed <n>', 'seed for the choice of images and flipped labels', int, 1)
    .action(async (o: Parameters<typeof import('./poison-command.js').poisonCommand>[0]) => {
      const { poisonCommand } = await import('./poison-command.js');
      await poisonCommand(o);
    });

  program
    .command('detect-poison')
    .description('flag training images that look poisoned, from a reference model’s penultimate activations')
    .requiredOption('--data <dir>', 'folder with the IDX training files')
    .option('--model <file>', 'reference model (default: train one on the suspect data)')
    .option('--arch <name>', 'architecture of the reference model trained here', 'small-cnn')
    .option('--epochs <n>', 'epochs for the reference model', int, 2)
    .option('--method <m>', 'spectral or activation-clustering', 'spectral')
    .option('--truth <file>', 'poison.json from `secmlops poison`: score the detection against it')
    .option('--limit <n>', 'use the first N training images (the truth is restricted to them)', int)
    .option('--rate <r>', 'expected poison rate (spectral flags 1.5 × this share of the images)', Number, 0.05)
    .option('--seed <n>', 'seed', int, 1)
    .option('--json <file>', 'write flagged indices (and recall, false_positive_rate, precision) as JSON')
    .action(async (o: Parameters<typeof import('./detect-poison-command.js').detectPoisonCommand>[0]) => {
      const { detectPoisonCommand } = await import('./detect-poison-command.js');
      await detectPoisonCommand(o);
    });

  const privacy = program
    .command('privacy')
    .description('the DP-SGD privacy accountant (RDP of the Poisson-subsampled Gaussian, improved conversion)');
  privacy
    .command('epsilon')
    .description('ε spent by DP-SGD with these parameters')
    .requiredOption('--sample-rate <q>', 'Poisson sampling rate (batch size / dataset size)', Number)
    .requiredOption('--noise-multiplier <s>', 'σ: noise standard deviation over the clipping norm', Number)
    .requiredOption('--steps <n>', 'training steps', Number)
    .requiredOption('--delta <d>', 'δ', Number)
    .option('--json <file>', 'write epsilon (top level), the order and the parameters as JSON')
    .action(async (o: Parameters<typeof import('./privacy-command.js').epsilonCommand>[0]) => {
      const { epsilonCommand } = await import('./privacy-command.js');
      await epsilonCommand(o);
    });
  privacy
    .command('noise')
    .description('the smallest noise multiplier that keeps ε at most the target')
    .requiredOption('--sample-rate <q>', 'Poisson sampling rate', Number)
    .requiredOption('--epochs <e>', 'epochs (ceil(1/q) steps each)', Number)
    .requiredOption('--target-epsilon <eps>', 'the ε to stay within', Number)
    .requiredOption('--delta <d>', 'δ', Number)
    .option('--json <file>', 'write noiseMultiplier (top level), the ε it spends and the parameters as JSON')
    .action(async (o: Parameters<typeof import('./privacy-command.js').noiseCommand>[0]) => {
      const { noiseCommand } = await import('./privacy-command.js');
      await noiseCommand(o);
    });

  withModelLimits(program.command('inspect'))
    .description('list an ONNX model’s inputs, outputs and ops, and which ops lack a gradient rule')
    .argument('<model>', 'model.onnx')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean } & LoadOptions) => {
      const { loadModel } = await import('../engine/onnx/model.js');
      const { inspectModel } = await import('../engine/inspect.js');
      const s = inspectModel(await loadModel(file, modelLimitsFrom(o)));
      if (o.json) return console.log(JSON.stringify(s, null, 2));
      const dims = (d: (number | string)[]) => `[${d.join(', ')}]`;
      console.log(
        `${file}: opset ${s.opset}${s.producer ? `, from ${s.producer}` : ''}, ${s.parameters.toLocaleString('en')} parameters`,
      );
      for (const i of s.inputs) console.log(`  input  ${i.name} ${dims(i.shape)}`);
      for (const out of s.outputs) console.log(`  output ${out.name} ${dims(out.shape)}`);
      console.log('  ops:');
      for (const op of s.ops)
        console.log(
          `    ${op.op.padEnd(22)} ×${String(op.count).padEnd(4)} ${op.gradient ? 'gradient rule' : 'NO gradient rule'}`,
        );
      console.log(
        s.withoutGradient.length
          ? `  white-box attacks cannot run: no gradient rule for ${s.withoutGradient.join(', ')}`
          : '  every op has a gradient rule: white-box attacks can run',
      );
    });
}

// Commands that run on the server's workers rather than in this process: federated training and the
// side-by-side experiment. Each loads its implementation only when it runs.
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { join } from 'node:path';
import { homePaths } from '../worker/paths.js';

export function addStudyCommands(program: Command, client: () => Promise<Client>): void {
  program
    .command('experiment')
    .description(
      'the defenses × attacks grid of an experiment file, as workflows; writes results.json, results.md, chart.svg',
    )
    .argument('<file>', 'experiment.yaml')
    .option('--quick', 'a seconds-long variant (mlp, 1 epoch, 3,000 training and 200 test images)')
    .option('--out <dir>', 'where the results go (default experiments/<name>)')
    .option('--id <workflowId>', 'workflow ID')
    .option('--resume', 'keep the cells already in <out>/results.json (same experiment) and run only the others')
    .action(async (file: string, o: { quick?: boolean; out?: string; id?: string; resume?: boolean }) => {
      const { experimentCommand } = await import('./experiment-command.js');
      await experimentCommand(client, file, o);
    });

  program
    .command('federated')
    .description(
      'start federated training (FedAvg) under the policy’s train.federated block, signed with a CLI start key; ' +
        'each client runs `secmlops worker --queues <client id>`',
    )
    .requiredOption('--policy <file>', 'the policy, as a path the workers resolve inside their policy source')
    .option(
      '--key <file>',
      'the CLI start key (PEM) whose public key the workers pin',
      join(homePaths().keys, 'cli.key'),
    )
    .option('--id <workflowId>', 'workflow ID (default: federated-<policy name>-<random>)')
    .option('--wait', 'follow the rounds until the global model is ready')
    .action(async (o: { policy: string; key: string; id?: string; wait?: boolean }) => {
      const { federatedCommand } = await import('./federated-command.js');
      await federatedCommand(client, o);
    });
}

#!/usr/bin/env python3
"""The PyTorch twin of the engine's speed benchmarks (issue 18): the same networks, data, batch, optimiser and
attacks as engine/train/zoo.ts, engine/train/trainer.ts and engine/attacks/attacks.ts, on PyTorch's CPU backend.

Prints one JSON object per workload on stdout, so a Node bench can run it between its own runs and print both
columns from one machine state. Needs PyTorch (Debian: python3-torch) and, for the evaluation workload, onnx
(python3-onnx) to read the example model's weights. Example:

    python3 bench/torch_twin.py --workload pgd7 --runs 5
"""
import argparse
import gzip
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION = '/usr/share/datasets/fashion-mnist'
FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}


def load(data, split, limit):
    """Images as float32 in [0, 1], N×1×28×28, and int64 labels: the engine's loadSplit, first `limit` images."""
    images, labels = FILES[split]
    with gzip.open(f'{data}/{images}') as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f'{data}/{labels}') as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


def small_cnn():
    """engine/train/zoo.ts smallCnn: conv 16, pool, conv 32, pool, FC 1568→10."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 10))


def wide_cnn():
    """engine/train/zoo.ts wideCnn: 32-32-pool-64-64-pool, FC 3136→256, FC 256→10."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, 10))


def he_uniform(model):
    """initWeights: uniform ±sqrt(6 / fan-in) for weights, zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            bound = (6 / fan_in) ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)
    return model


def fgsm_rs(model, x, y, eps):
    """FGSM with a random start (Wong et al. 2020), step 1.25·eps, as the engine's fgsm-rs defense."""
    delta = (torch.rand_like(x) * 2 - 1) * eps
    delta.requires_grad_(True)
    loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
    (grad,) = torch.autograd.grad(loss, delta)
    delta = (delta + 1.25 * eps * grad.sign()).clamp(-eps, eps)
    return (x + delta).clamp(0, 1).detach()


def pgd(model, x, y, eps, steps):
    """Linf PGD (Madry et al. 2018) from a random start, step 2.5·eps/steps, every step taken."""
    alpha = 2.5 * eps / steps
    adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        adv = torch.min(torch.max(adv.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def train_epoch(model, x, y, attack, batch=128, lr=1e-3):
    """One epoch of Adam on shuffled batches of 128; returns images per second."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.randperm(len(x))
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        xb, yb = x[idx], y[idx]
        if attack:
            model.eval()
            xb = attack(model, xb, yb)
            model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return len(x) / (time.perf_counter() - start)


def example_model(path):
    """The small CNN with the weights of examples/fashion-mnist/model.onnx (Gemm weights are stored fin×fout)."""
    import onnx
    from onnx import numpy_helper
    weights = {i.name: numpy_helper.to_array(i).copy() for i in onnx.load(path).graph.initializer}
    model = small_cnn()
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    fc = model[-1]
    tensors = sorted(weights.items(), key=lambda kv: kv[0])
    four = [v for _, v in tensors if v.ndim == 4]
    ones = [v for _, v in tensors if v.ndim == 1]
    twos = [v for _, v in tensors if v.ndim == 2]
    if len(four) != 2 or len(twos) != 1 or len(ones) != 3:
        raise SystemExit(f'{path}: expected the small CNN (2 convolutions, 1 Gemm), found {sorted(weights)}')
    four.sort(key=lambda v: v.shape[0])
    ones.sort(key=lambda v: v.shape[0])
    with torch.no_grad():
        for conv, w in zip(convs, four):
            conv.weight.copy_(torch.from_numpy(w))
        biases = {v.shape[0]: v for v in ones}
        convs[0].bias.copy_(torch.from_numpy(biases[16]))
        convs[1].bias.copy_(torch.from_numpy(biases[32]))
        fc.bias.copy_(torch.from_numpy(biases[10]))
        w = twos[0]
        fc.weight.copy_(torch.from_numpy(w.T.copy() if w.shape == (1568, 10) else w))
    return model.eval()


def evaluate(model, x, y, eps, steps, batch):
    """PGD-`steps` over the images in batches, with the clean and adversarial predictions the engine's runAttack also
    makes; images per second, clean and robust accuracy."""
    clean = robust = 0
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        adv = pgd(model, xb, yb, eps, steps)
        with torch.no_grad():
            clean += int((model(xb).argmax(1) == yb).sum())
            robust += int((model(adv).argmax(1) == yb).sum())
    return len(x) / (time.perf_counter() - start), clean / len(x), robust / len(x)


WORKLOADS = {
    # name: (architecture, training images, attack) — the rows of bench/training.bench.ts
    'standard': (small_cnn, 6400, None),
    'fgsm-rs': (small_cnn, 6400, lambda m, x, y: fgsm_rs(m, x, y, 0.1)),
    'pgd7': (small_cnn, 6400, lambda m, x, y: pgd(m, x, y, 0.1, 7)),
    'pgd3-wide': (wide_cnn, 1280, lambda m, x, y: pgd(m, x, y, 0.1, 3)),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--workload', required=True, choices=[*WORKLOADS, 'pgd20-eval'])
    p.add_argument('--runs', type=int, default=5)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--data', default=FASHION)
    p.add_argument('--model', default='examples/fashion-mnist/model.onnx')
    p.add_argument('--images', type=int, help='images per run (default: the workload\'s own)')
    p.add_argument('--batch', type=int, default=256, help='evaluation batch (pgd20-eval; the engine uses 256)')
    a = p.parse_args()
    if a.runs < 1 or a.threads < 1 or (a.images is not None and a.images < 1):
        p.error('--runs, --threads and --images must be at least 1')
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    out = {'workload': a.workload, 'torch': torch.__version__, 'threads': a.threads}
    if a.workload == 'pgd20-eval':
        x, y = load(a.data, 'test', a.images or 10_000)
        model = example_model(a.model)
        runs = [evaluate(model, x, y, 0.1, 20, a.batch) for _ in range(a.runs)]
        out.update(images=len(x), images_per_s=[r[0] for r in runs], clean_accuracy=runs[-1][1],
                   robust_accuracy=runs[-1][2])
    else:
        arch, n, attack = WORKLOADS[a.workload]
        x, y = load(a.data, 'train', a.images or n)
        out.update(images=len(x), images_per_s=[train_epoch(he_uniform(arch()), x, y, attack) for _ in range(a.runs)])
    out['median'] = statistics.median(out['images_per_s'])
    json.dump(out, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()

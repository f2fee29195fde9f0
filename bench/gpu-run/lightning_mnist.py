"""The peer of `rapidfire fit` on examples/mnist: the same 4 configs (MLP and CNN x Adam lr 0.001 and 0.003, StepLR
step 1 gamma 0.7, 3 epochs, minibatches of 64, hidden 128, dropout 0.1), the same digits and normalization, trained one
after another as a PyTorch Lightning user does (one Trainer per config). Writes one JSON line per config and a total:

    python3 lightning_mnist.py EXAMPLE_DIR DEVICE [EPOCHS]      DEVICE: cuda or cpu

Uses pytorch_lightning where it is installed; otherwise (a CPU dry run on a machine without it) the same loop by hand,
marked "loop": "plain" in its output. The data is read and tensorized once, before the timer of each config starts.
"""
import csv
import json
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image
from torch import nn

example, device = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(os.cpu_count() or 1)


def load(split):
    with open(os.path.join(example, "data", f"{split}.csv")) as f:
        rows = list(csv.DictReader(f))
    images = np.stack([np.asarray(Image.open(os.path.join(example, "data", r["filepath"])).convert("L"), dtype=np.float32)
                       for r in rows]) / 255.0
    x = torch.from_numpy((images - 0.1307) / 0.3081).unsqueeze(1)  # [N, 1, 28, 28]
    y = torch.tensor([int(r["label"]) for r in rows])
    return x, y


def model_for(kind, hidden=128, dropout=0.1):
    if kind == "mlp":
        return nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(784, hidden), relu=nn.ReLU(),
                                         dropout=nn.Dropout(dropout), fc2=nn.Linear(hidden, 10)))
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 16, 3, padding=1), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(16, 32, 3, padding=1), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(), fc1=nn.Linear(32 * 7 * 7, hidden), relu3=nn.ReLU(), dropout=nn.Dropout(dropout),
        fc2=nn.Linear(hidden, 10)))


train_x, train_y = load("train")
val_x, val_y = load("validation")
configs = [(kind, lr) for kind in ("mlp", "cnn") for lr in (0.001, 0.003)]  # configs.json's grid order

try:
    import pytorch_lightning as pl
except ImportError:
    pl = None


def plain_loop(kind, lr):
    torch.manual_seed(42)
    model = model_for(kind).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    x, y, vx, vy = train_x.to(device), train_y.to(device), val_x.to(device), val_y.to(device)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y), device=device)
        for start in range(0, len(y), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x.index_select(0, batch)), y.index_select(0, batch)).backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        return (model(vx).argmax(1) == vy).float().mean().item()


def lightning(kind, lr):
    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model_for(kind)
            self.correct, self.count = 0, 0

        def training_step(self, batch, _):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.correct += (self.net(x).argmax(1) == y).sum().item()
            self.count += len(y)

        def on_validation_epoch_start(self):
            self.correct, self.count = 0, 0

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(self.parameters(), lr=lr)
            return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)]

    pl.seed_everything(42, verbose=False)
    data = torch.utils.data.TensorDataset(train_x, train_y)
    val = torch.utils.data.TensorDataset(val_x, val_y)
    module = Module()
    trainer = pl.Trainer(max_epochs=epochs, accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=64, shuffle=True),
                torch.utils.data.DataLoader(val, batch_size=64))
    return module.correct / max(module.count, 1)


total = time.perf_counter()
for kind, lr in configs:
    start = time.perf_counter()
    accuracy = lightning(kind, lr) if pl else plain_loop(kind, lr)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    print(json.dumps({"model_type": kind, "lr": lr, "val_top1_accuracy": round(accuracy, 4),
                      "seconds": round(time.perf_counter() - start, 2), "loop": "lightning" if pl else "plain"}), flush=True)
print(json.dumps({"total_seconds": round(time.perf_counter() - total, 2), "configs": len(configs),
                  "torch": torch.__version__, "lightning": pl.__version__ if pl else None, "device": device}), flush=True)

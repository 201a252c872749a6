"""Writes the networks the native path's tests lower and compare with LibTorch, into
OUT_DIR/native/: NAME.pt (TorchScript) and NAME.inputs.json (real inputs: scaled rows of
scikit-learn's breast cancer and wine data, where the network was trained on them).

    python tests/executor/make_native_models.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.preprocessing import StandardScaler
from torch import nn


class Cancer(nn.Module):
    """30 -> 64 -> 32 -> 1: LayerNorm, GELU, dropout (identity in eval), a sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 64), nn.LayerNorm(64), nn.GELU(), nn.Dropout(0.2),
                                 nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(-1)


class Wine(nn.Module):
    """13 -> 32 -> 3: BatchNorm, LeakyReLU, GELU (tanh), a softmax over the classes."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.BatchNorm1d(32), nn.LeakyReLU(0.05), nn.Linear(32, 32),
                                 nn.GELU(approximate="tanh"), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=-1)


class Residual(nn.Module):
    """Two residual blocks: y = x + W2 relu(W1 x), with a ReLU between."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.inp = nn.Linear(10, width)
        self.a1, self.a2 = nn.Linear(width, width), nn.Linear(width, width)
        self.b1, self.b2 = nn.Linear(width, width), nn.Linear(width, width)
        self.out = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        h = h + self.a2(torch.relu(self.a1(h)))
        h = torch.relu(h)
        h = h + self.b2(torch.relu(self.b1(h)))
        return self.out(h)


class Vector(nn.Module):
    """x @ w + b with a weight vector: one output per row (the shape of ember's test_package)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(70), requires_grad=False)
        self.b = nn.Parameter(torch.tensor(0.3), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x @ self.w + self.b)


class Wide(nn.Module):
    """The benchmark's shape: 70 -> 64 -> 64 -> 1, ReLU, a sigmoid, [rows, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(70, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


class Gated(nn.Module):
    """Not a feed-forward chain (the activation multiplies itself): stays on LibTorch."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return h * torch.sigmoid(h)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, classes: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y)
    model.train()
    for _ in range(150):
        opt.zero_grad()
        out = model(xt)
        loss = (nn.functional.binary_cross_entropy(out, yt.float()) if classes == 2
                else nn.functional.nll_loss(torch.log(out + 1e-9), yt.long()))
        loss.backward()
        opt.step()
    model.eval()


def main(out_dir: str) -> None:
    target = os.path.join(out_dir, "native")
    os.makedirs(target, exist_ok=True)
    torch.manual_seed(5)
    cancer_x, cancer_y = load_breast_cancer(return_X_y=True)
    wine_x, wine_y = load_wine(return_X_y=True)
    cancer_x = StandardScaler().fit_transform(cancer_x).astype(np.float32)
    wine_x = StandardScaler().fit_transform(wine_x).astype(np.float32)
    cancer, wine = Cancer(), Wine()
    train(cancer, cancer_x, cancer_y, 2)
    train(wine, wine_x, wine_y, 3)
    models = {"cancer": (cancer, cancer_x), "wine": (wine, wine_x), "residual": (Residual(), None),
              "vector": (Vector(), None), "wide": (Wide(), None), "gated": (Gated(), None)}
    for name, (model, data) in models.items():
        torch.jit.script(model.eval()).save(os.path.join(target, name + ".pt"))
        if data is not None:
            with open(os.path.join(target, name + ".inputs.json"), "w") as f:
                json.dump({"rows": int(data.shape[0]), "cols": int(data.shape[1]),
                           "values": [float(v) for v in data.reshape(-1)]}, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_native_models.py OUT_DIR")
    main(sys.argv[1])

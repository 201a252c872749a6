"""Generates the TorchScript models (and their reference outputs) that ember's tests
and benchmarks use. Nothing here is committed as a binary: run it into a folder.

    python tests/models/make_models.py OUT_DIR [--only NAME ...]
"""

import argparse
import json
import os
import sys
import zipfile
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn


class MLP(nn.Module):
    """32 -> 64 -> 64 -> 1 with ReLU and a sigmoid: the benchmark's model."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


class TwoInputs(nn.Module):
    def forward(self, features: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return features * scale + 1.0


class DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        logits = self.linear(x)
        return {"logits": logits, "probs": torch.softmax(logits, dim=-1)}


class TupleOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return x.sum(dim=-1), x * 2


class NestedOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, List[torch.Tensor]], int, float, bool]:
        return x + 1, {"parts": [x, x * 3]}, 7, 0.5, True


class Raises(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() < 0):
            raise ValueError("negative total is not allowed")
        return x * 2


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class InPlace(nn.Module):
    """Writes into its input, as some real models do (clamp_, add_), then answers from it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.clamp_(0.0, 1.0)
        x.add_(1.0)
        return x.sum(1)


class Log(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)


class IntArgument(nn.Module):
    def forward(self, x: torch.Tensor, repeats: int) -> torch.Tensor:
        return x.repeat(repeats, 1)


class OptionalArgument(nn.Module):
    def forward(self, x: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        if bias is None:
            return x * 10
        return x * 10 + bias


class StringOutput(nn.Module):
    def forward(self, x: torch.Tensor) -> str:
        return "not a tensor"


class WithExtraMethod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    @torch.jit.export
    def describe(self, k: int) -> str:
        return "linear"


def mlp_inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.randn(16, 32, generator=g)


def save_script(module: nn.Module, path: str) -> None:
    torch.jit.script(module.eval()).save(path)


def make_mlp(out: str) -> None:
    torch.manual_seed(0)
    model = MLP().eval()
    save_script(model, os.path.join(out, "mlp.pt"))
    x = mlp_inputs()
    with torch.no_grad():
        y = model(x)
    with open(os.path.join(out, "mlp_io.json"), "w") as f:
        json.dump({"input": x.tolist(), "output": y.tolist()}, f)


def make_others(out: str) -> None:
    torch.manual_seed(1)
    for name, module in {
        "two_inputs": TwoInputs(),
        "dict_output": DictOutput(),
        "tuple_output": TupleOutput(),
        "nested_output": NestedOutput(),
        "raises": Raises(),
        "identity": Identity(),
        "log": Log(),
        "in_place": InPlace(),
        "int_argument": IntArgument(),
        "optional_argument": OptionalArgument(),
        "string_output": StringOutput(),
        "extra_method": WithExtraMethod(),
    }.items():
        save_script(module, os.path.join(out, name + ".pt"))
    # Archives that are zip files but not TorchScript modules.
    torch.save(MLP().state_dict(), os.path.join(out, "state_dict.pt"))
    with zipfile.ZipFile(os.path.join(out, "random.zip"), "w") as z:
        z.writestr("hello.txt", "not a model")
        z.writestr("archive/data.pkl", b"\x80\x04garbage")


GENERATORS = {"mlp": make_mlp, "others": make_others}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="folder to write the models into (created if missing)")
    parser.add_argument("--only", action="append", choices=sorted(GENERATORS), help="generate only these groups")
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    for name in args.only or sorted(GENERATORS):
        GENERATORS[name](args.out_dir)
    print(f"models written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

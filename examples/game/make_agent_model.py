"""Writes the game's agent model to OUT_DIR: does an agent dash toward its target this
frame? p = sigmoid(2 energy - 0.01 (|dx| + |dy|) + 0.5) as a TorchScript network (ReLU
units make |dx| + |dy|), with a logistic regression on energy alone as the fallback that
also answers in a build without LibTorch. No training: the weights are written out.

    python make_agent_model.py OUT_DIR
"""
import json
import os
import sys

import torch


class Dash(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # Hidden units relu(dx), relu(-dx), relu(dy), relu(-dy), relu(energy).
        hidden = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]])
        self.hidden = torch.nn.Parameter(hidden, requires_grad=False)
        self.out = torch.nn.Parameter(torch.tensor([-0.01, -0.01, -0.01, -0.01, 2.0]), requires_grad=False)
        self.bias = torch.nn.Parameter(torch.tensor(0.5), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3] (dx, dy, energy); the probability of dashing, one per row."""
        return torch.sigmoid(torch.relu(x @ self.hidden.t()) @ self.out + self.bias)


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    torch.jit.script(Dash().eval()).save(os.path.join(out_dir, "model.pt"))
    coordinate = {"type": "number", "minimum": -10000, "maximum": 10000}
    schema = {"title": "Agent", "type": "object", "additionalProperties": False, "required": ["dx", "dy", "energy"],
              "properties": {"dx": coordinate, "dy": coordinate,
                             "energy": {"type": "number", "minimum": 0, "maximum": 1}}}
    linear = {"format": "ember-linear", "version": 1, "estimator": "LogisticRegression", "coef": [[0.0, 0.0, 2.0]],
              "intercept": [-0.5], "classes": [0.0, 1.0], "multi_class": "multinomial"}
    chain = {"format": "ember-chain", "version": 1, "stages": [
        {"name": "primary", "type": "torchscript", "device": "cpu", "optional": True},
        {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
        {"name": "default", "type": "default", "outputs": {"output": 0.0}}]}
    for name, doc in (("schema.json", schema), ("linear.json", linear), ("chain.json", chain)):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_agent_model.py OUT_DIR")
    main(sys.argv[1])

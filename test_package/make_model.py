"""Writes the tiny model test_package/ loads: p = sigmoid(0.8 x - 0.5 y + 0.1), as
TorchScript (model.pt) and as the same logistic regression (linear.json), which answers
in a build without LibTorch. test_package writes it into its build folder with the Python
running Conan (without torch there, only the logistic regression); the model gate's tests
write variants of it (other weights, a renamed feature, a slower network).

    python make_model.py OUT_DIR [--weights 0.8 -0.5 0.1] [--rename-y NAME] [--slow N]
"""
import argparse
import json
import os

try:
    import torch
except ImportError:  # the logistic regression alone
    torch = None


if torch is not None:
    class Tiny(torch.nn.Module):
        def __init__(self, w0: float, w1: float, b: float, slow: int) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([w0, w1]), requires_grad=False)
            self.b = torch.nn.Parameter(torch.tensor(b), requires_grad=False)
            self.slow = slow

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """Probability of the positive class, one per row."""
            p = torch.sigmoid(x @ self.w + self.b)
            for _ in range(self.slow):  # the same answer, computed `slow` more times
                p = p + 0.0 * torch.sigmoid(x @ self.w + self.b)
            return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--weights", nargs=3, type=float, default=[0.8, -0.5, 0.1], metavar=("W_X", "W_Y", "B"))
    parser.add_argument("--rename-y", default="y", metavar="NAME", help="call the second feature NAME")
    parser.add_argument("--slow", type=int, default=0, help="repeat the computation N more times")
    args = parser.parse_args()
    w0, w1, b = args.weights
    os.makedirs(args.out_dir, exist_ok=True)
    if torch is not None:
        torch.jit.script(Tiny(w0, w1, b, args.slow).eval()).save(os.path.join(args.out_dir, "model.pt"))
    coordinate = {"type": "number", "minimum": -100, "maximum": 100}
    schema = {"title": "Point", "type": "object", "additionalProperties": False, "required": ["x", args.rename_y],
              "properties": {"x": coordinate, args.rename_y: coordinate}}
    linear = {"format": "ember-linear", "version": 1, "estimator": "LogisticRegression", "coef": [[w0, w1]],
              "intercept": [b], "classes": [0.0, 1.0], "multi_class": "multinomial"}
    primary = [{"name": "primary", "type": "torchscript", "device": "cpu", "optional": True}] if torch else []
    chain = {"format": "ember-chain", "version": 1, "stages": primary + [
        {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
        {"name": "default", "type": "default", "outputs": {"output": 0.5}}]}
    for name, doc in (("schema.json", schema), ("linear.json", linear), ("chain.json", chain)):
        with open(os.path.join(args.out_dir, name), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()

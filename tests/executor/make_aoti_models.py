"""Writes the AOTInductor packages the AotiExecutor's tests load, into OUT_DIR/aoti/: the
70 -> 64 -> 64 -> 1 MLP compiled by ember.aoti (mlp.pt2, with its TorchScript twin
mlp.pt for reference outputs), and copies whose metadata says another torch
(foreign_torch.pt2), a CPU feature no CPU has (foreign_cpu.pt2), or nothing about
their inputs (no_inputs.pt2).

    python tests/executor/make_aoti_models.py OUT_DIR
"""

import json
import os
import sys
import zipfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
sys.path.insert(0, os.path.dirname(__file__))
from ember.aoti import compile_package  # noqa: E402
from make_native_models import Wide  # noqa: E402


def rewrite_metadata(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("_metadata.json") and "/aotinductor/" in item.filename:
                meta = json.loads(data)
                change(meta)
                data = json.dumps(meta).encode()
            zout.writestr(item, data)


def main(out_dir):
    target = os.path.join(out_dir, "aoti")
    os.makedirs(target, exist_ok=True)
    mlp = os.path.join(target, "mlp.pt2")
    torch.manual_seed(7)
    module = Wide().eval()
    if not os.path.exists(mlp):  # compiling takes a while: once per build folder
        torch.jit.script(module).save(os.path.join(target, "mlp.pt"))
        compile_package(module, torch.randn(4, 70), mlp, max_rows=1024)
    rewrite_metadata(mlp, os.path.join(target, "foreign_torch.pt2"), lambda m: m.update({"ember.torch": "1.0.0"}))
    rewrite_metadata(mlp, os.path.join(target, "foreign_cpu.pt2"),
                     lambda m: m.update({"AOTI_CPU_ISA": m.get("AOTI_CPU_ISA", "") + " QUANTUM_FPU"}))
    rewrite_metadata(mlp, os.path.join(target, "no_inputs.pt2"), lambda m: m.pop("ember.inputs"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_aoti_models.py OUT_DIR")
    main(sys.argv[1])

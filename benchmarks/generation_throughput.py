"""Batched local generation against a per-prompt ``generate`` loop, same model and prompts.

    python benchmarks/generation_throughput.py [--quick] [--model fixtures/zoo/models/teacher-a]

Both sides run greedy decoding through provenance's ``hf/`` backend (batch size 1 is the
per-prompt loop), in one process, alternating, so the machine's load hits both alike. The
outputs are compared answer by answer; the speed-up is reported as a ratio of answers per
second. Writes ``benchmarks/results/generation_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.battery import load_battery  # noqa: E402
from provenance.models import Request, SamplingSettings, load_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "generation_throughput.json"


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "cuda": torch.cuda.is_available()}


def run(model_path: str, n_prompts: int, batch_size: int, max_new_tokens: int, device: str) -> dict:
    prompts = [p for name in ("ngram", "quirks", "self_id") for p in load_battery(name).prompts][:n_prompts]
    reqs = [Request(p.id, p.text, 0, seed=i) for i, p in enumerate(prompts)]
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=max_new_tokens)
    batched = load_model(f"hf/{model_path}", batch_size=batch_size, device=device)
    loop = load_model(f"hf/{model_path}", batch_size=1, device=device)
    batched.generate(reqs[:2], greedy)  # load weights and warm up both
    loop.generate(reqs[:2], greedy)

    t0 = time.perf_counter()
    out_loop = loop.generate(reqs, greedy)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    out_batch = batched.generate(reqs, greedy)
    t_batch = time.perf_counter() - t0

    same = sum(a.text == b.text for a, b in zip(out_loop, out_batch))
    tokens = sum(c.tokens_out for c in out_batch)
    return {
        "model": model_path, "device": batched.device, "n_prompts": len(reqs), "batch_size": batch_size,
        "max_new_tokens": max_new_tokens, "decoding": "greedy",
        "per_prompt_loop_seconds": round(t_loop, 3), "batched_seconds": round(t_batch, 3),
        "per_prompt_answers_per_second": round(len(reqs) / t_loop, 2),
        "batched_answers_per_second": round(len(reqs) / t_batch, 2),
        "batched_tokens_per_second": round(tokens / t_batch, 1),
        "speedup": round(t_loop / t_batch, 2),
        "identical_outputs": same, "identical_fraction": round(same / len(reqs), 4),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "fixtures" / "zoo" / "models" / "teacher-a"))
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="32 prompts (CI smoke run)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    n = 32 if args.quick else args.prompts
    result = {"benchmark": "generation_throughput", "target": "batched >= 10x the per-prompt loop, identical greedy outputs",
              "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": args.quick,
              "machine": machine(), **run(args.model, n, args.batch_size, args.max_new_tokens, args.device)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"per-prompt loop {result['per_prompt_answers_per_second']}/s, batched {result['batched_answers_per_second']}/s "
          f"(batch {args.batch_size}): {result['speedup']}x; identical greedy outputs {result['identical_outputs']}/{n}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

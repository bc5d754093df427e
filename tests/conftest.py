"""Shared fixtures: the lineage zoo's real models and one real audit run on them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# the zoo models are tiny: one thread per process is as fast and never oversubscribes 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "fixtures" / "zoo"
SHARED_DATA = ROOT.parent / "shared" / "data"
MT_BENCH = SHARED_DATA / "mt_bench.jsonl.gz"


def zoo_model(name: str) -> str:
    return f"hf/{ZOO / 'models' / name}"


@pytest.fixture(scope="session")
def manifest() -> dict:
    return json.loads((ZOO / "lineage.json").read_text())


@pytest.fixture(scope="session")
def zoo_audit(tmp_path_factory):
    """seqkd-a audited against teacher A (and B) with three controls, on all three batteries."""
    from provenance.audit import make_spec, run_audit

    out = tmp_path_factory.mktemp("zoo-audit")
    spec = make_spec({
        "candidate": zoo_model("seqkd-a"),
        "references": [zoo_model("teacher-a"), zoo_model("teacher-b")],
        "controls": [zoo_model("control-1"), zoo_model("control-2"), zoo_model("control-3")],
        # the zoo knows only English; the ngram subset keeps this fixture about as fast as the
        # first, smaller batteries were (the full batteries run in benchmarks/batteries_zoo.py)
        "batteries": ["self_id[language=en]", "quirks", "ngram[seen_topic=yes]"],
        "seed": 0,
        "n_resamples": 1999,
    })
    report = run_audit(spec, out, progress=False)
    return spec, out, report


def needs_shared_data():
    return pytest.mark.skipif(not MT_BENCH.exists(), reason=f"{MT_BENCH} absent (../shared/data is not beside the repo)")

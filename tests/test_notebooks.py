"""notebooks/ run top to bottom (nbclient, a real Jupyter kernel of this environment).

Marked ``slow`` and ``notebook``: .ci/run runs them after the default suite; alone:
``pytest -m notebook``. The notebooks write their audits under $PROVENANCE_NOTEBOOK_OUT, here a
temporary directory seeded with the session's zoo audit store, so the quickstart asks no
model again; the dose series generates the dose models' answers (minutes on CPU).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import MT_BENCH, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.notebook]

NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="module")
def notebook_out(zoo_audit, tmp_path_factory) -> Path:
    """Where the notebooks write, with the zoo audit's answers already in the quickstart's store."""
    _, out, _ = zoo_audit
    dst = tmp_path_factory.mktemp("notebooks")
    (dst / "zoo").mkdir()
    shutil.copy(out / "store.sqlite", dst / "zoo" / "store.sqlite")
    return dst


def run_notebook(path: Path, out: Path, timeout: int = 1200):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    env = {"PROVENANCE_NOTEBOOK_OUT": str(out), "PROVENANCE_NOTEBOOK_RESAMPLES": "999", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_notebooks_are_committed_without_outputs():
    import json

    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [p.name for p in paths] == ["01_quickstart.ipynb", "02_power_and_dose.ipynb", "03_mt_bench_pool.ipynb"]
    for p in paths:
        nb = json.loads(p.read_text(encoding="utf-8"))
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), p.name


def test_quickstart_runs(notebook_out):
    nb = run_notebook(NOTEBOOKS / "01_quickstart.ipynb", notebook_out)
    outs = outputs(nb)
    assert not [o for o in outs if o["output_type"] == "error"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outs)  # figures were produced
    assert any("text/html" in o.get("data", {}) and "provenance audit" in o["data"]["text/html"] for o in outs)
    assert any("the report matches the store" in o.get("text", "") for o in outs)


def test_power_and_dose_runs(notebook_out):
    nb = run_notebook(NOTEBOOKS / "02_power_and_dose.ipynb", notebook_out)
    assert not [o for o in outputs(nb) if o["output_type"] == "error"]


@pytest.mark.skipif(not MT_BENCH.exists(), reason="../shared/data is not beside the repository")
def test_mt_bench_pool_runs(notebook_out):
    nb = run_notebook(NOTEBOOKS / "03_mt_bench_pool.ipynb", notebook_out)
    outs = outputs(nb)
    assert not [o for o in outs if o["output_type"] == "error"]
    assert any("vicuna-13b-v1.3" in o.get("data", {}).get("text/html", "") for o in outs)

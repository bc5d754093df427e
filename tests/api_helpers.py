"""Helpers for the API tests: a small battery, audit files against a loopback server, and
running the real CLI in-process or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: fast transport settings for tests (real retries, short waits)
FAST = {"backoff_initial": 0.01, "backoff_max": 0.2, "timeout": 5.0, "max_attempts": 10}


def small_battery(folder: Path, n_prompts: int = 8, samples: int = 2, source: str = "self_id",
                  max_new_tokens: int = 24, name: str | None = None) -> Path:
    """A battery of the first ``n_prompts`` prompts of a shipped battery."""
    src = ROOT / "probes" / source
    spec = yaml.safe_load((src / "battery.yaml").read_text())
    spec["name"] = name or f"{source}-small"
    spec["generation"]["samples"] = samples
    spec["generation"]["max_new_tokens"] = max_new_tokens
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "battery.yaml").write_text(yaml.safe_dump(spec))
    lines = (src / "prompts.jsonl").read_text().splitlines()[:n_prompts]
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def api_audit(base_url: str, battery: Path, *, names=("cand", "ref", "ctl"), options: dict | None = None,
              per_model: dict | None = None, n_resamples: int = 99, seed: int = 0) -> dict:
    """An audit dict whose models are openai/<name> on ``base_url``."""
    def entry(n):
        opts = {"base_url": base_url, **FAST, **(options or {}), **((per_model or {}).get(n, {}))}
        return {"model": f"openai/{n}", "options": opts}

    return {"candidate": entry(names[0]), "references": [entry(n) for n in names[1:2]],
            "controls": [entry(n) for n in names[2:]], "batteries": [str(battery)], "seed": seed,
            "n_resamples": n_resamples}


def write_audit(path: Path, audit: dict) -> Path:
    path.write_text(json.dumps(audit, indent=1))
    return path


def cli(args: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command line, in a subprocess."""
    e = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "provenance.cli", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)

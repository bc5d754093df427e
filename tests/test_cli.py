"""The CLI: one clear line for every kind of bad input, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import MT_BENCH, ROOT, needs_shared_data, zoo_model


def run_cli(*args, cwd=ROOT):
    proc = subprocess.run([sys.executable, "-m", "provenance.cli", *args], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_unknown_model_string(tmp_path):
    rc, _, err = run_cli("audit", "--candidate", "gguf/x", "--reference", zoo_model("teacher-a"), "--out", str(tmp_path))
    assert_one_line_error(rc, err, "gguf/x", "unknown provider")


def test_missing_model_path(tmp_path):
    rc, _, err = run_cli("audit", "--candidate", "hf/./nowhere/model", "--reference", zoo_model("teacher-a"),
                         "--out", str(tmp_path))
    assert_one_line_error(rc, err, "nowhere/model", "no such model folder")


def test_malformed_audit_file(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('candidate = "hf/x"\nreferences = [\n')
    rc, _, err = run_cli("audit", str(f), "--out", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "a.toml", "malformed audit file")


def test_audit_file_with_unknown_key(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text(f"candidate: {zoo_model('seqkd-a')}\nreferences: [{zoo_model('teacher-a')}]\ncandidates: []\n")
    rc, _, err = run_cli("audit", str(f), "--out", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "a.yaml", "candidates")


def test_battery_failing_its_schema(tmp_path):
    bad = tmp_path / "mybattery"
    bad.mkdir()
    (bad / "battery.yaml").write_text("name: mine\nversion: '1'\nscorer: ngram\ngeneration: {samples: 0}\n")
    (bad / "prompts.jsonl").write_text('{"id": "a", "text": "hi"}\n')
    rc, _, err = run_cli("audit", "--candidate", zoo_model("seqkd-a"), "--reference", zoo_model("teacher-a"),
                         "--battery", str(bad), "--out", str(tmp_path / "o"))
    assert_one_line_error(rc, err, "battery.yaml")
    rc, _, err = run_cli("batteries", "validate", str(bad))
    assert_one_line_error(rc, err, "battery.yaml")


@needs_shared_data()
def test_transcripts_file_without_the_model(tmp_path):
    rc, _, err = run_cli("audit", "--candidate", f"transcripts/{MT_BENCH}#no-such-model",
                         "--reference", f"transcripts/{MT_BENCH}#gpt-3.5-turbo", "--battery", "transcripts:ngram",
                         "--out", str(tmp_path))
    assert_one_line_error(rc, err, "no-such-model")


def test_batteries_list_and_show():
    rc, out, err = run_cli("batteries", "list")
    assert rc == 0, err
    for name in ("self_id", "quirks", "ngram"):
        assert name in out
    rc, out, err = run_cli("batteries", "show", "quirks")
    assert rc == 0 and "content hash" in out


def test_cli_audit_runs_and_reports(tmp_path):
    rc, out, err = run_cli("audit", "--candidate", zoo_model("seqkd-b"), "--reference", zoo_model("teacher-b"),
                           "--control", zoo_model("control-1"), "--control", zoo_model("control-2"),
                           "--battery", "quirks", "--samples", "2", "--n-resamples", "199", "--quiet",
                           "--out", str(tmp_path / "audit"))
    assert rc == 0, err
    assert "excess" in out and "report.html" in out
    rc, out2, err = run_cli("report", str(tmp_path / "audit"))
    assert rc == 0, err
    assert "report.html" in out2

"""Re-render a report from its record: ``python -m provenance.report report.json [OUT_DIR]``.

Validates report.json and writes report.json, report.md and report.html into OUT_DIR
(default: the directory of report.json). Needs no models and no network.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import write_report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    src = Path(args[0])
    try:
        report = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"error: cannot read {src}: {e}", file=sys.stderr)
        return 2
    try:
        paths = write_report(report, Path(args[1]) if len(args) == 2 else src.parent)
    except ValueError as e:
        print(f"error: {src}: {e}", file=sys.stderr)
        return 2
    for p in paths.values():
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

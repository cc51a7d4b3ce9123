"""Where a benchmark result came from: date, machine and the command that reruns it."""
from __future__ import annotations

import platform
import sys
from datetime import date
from pathlib import Path


def run_header(module: str, argv: list[str] | None) -> dict[str, str]:
    """{'date', 'machine', 'command'} for a result written by ``python -m module`` with ``argv``
    (None: this process's own arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return {"date": str(date.today()),
            "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
            "command": " ".join(["python", "-m", module, *args])}


def write_results(out: Path, name: str, result: dict, text: str) -> None:
    """Write ``out/name.json`` (``result``) and ``out/name.md`` (``text``), creating ``out``, and
    print the markdown."""
    from solvers.files import write_json
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{name}.json", result, indent=1)
    (out / f"{name}.md").write_text(text)
    print(text)

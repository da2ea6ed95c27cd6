"""`make bench`: every benchmark, each measured against its reference in the same run.

Prints one table (and writes it to bench/results/latest.md). Ratios, not absolute times, are
the figures to compare across machines. Pick benchmarks with `python bench/run.py dsp host`.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from dsp.kernels import pin  # noqa: E402

pin()  # the mixstyle command's kernels (dsp/kernels.py), as the users' runs have them

SUITES = ("dsp", "loudness", "learn", "corrections", "host", "studio_rt", "page", "master")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def main(argv: list[str]) -> int:
    chosen = [s for s in argv if s in SUITES] or list(SUITES)
    rows: list[dict] = []
    for name in chosen:
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"{name}_bench")
        except ModuleNotFoundError as e:
            rows.append({"name": f"{name}: not available", "note": str(e)})
            continue
        try:
            rows.extend(mod.run())
        except Exception as e:  # noqa: BLE001 - one failing suite must not hide the others
            traceback.print_exc()
            rows.append({"name": f"{name}: failed", "note": f"{type(e).__name__}: {e}"})
        print(f"[{name} done in {time.perf_counter() - t0:.0f} s]", file=sys.stderr)
    head = "| benchmark | ours | reference | ratio | target | unit | note |"
    lines = [f"Machine: {platform.machine()}, {platform.python_version()}, "
             f"{time.strftime('%Y-%m-%d')}", "", head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k in
                                        ("name", "ours", "reference", "ratio", "target", "unit",
                                         "note")) + " |")
    text = "\n".join(lines)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

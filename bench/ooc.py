"""Out of core: the Parquet starter's evaluate() on a million-row predictions file, against
the same file loaded whole into pandas. Shared by `python -m bench` and
tests/test_starter_parquet.py.

Each side runs in its own fresh interpreter that imports numpy, pandas and pyarrow first;
the figure is that child's peak RSS (getrusage ru_maxrss) minus its RSS after the
imports, so the interpreter and the libraries count for neither side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

STARTER = "numerai_parquet"

_CHILD = r"""
import json, os, sys, tempfile, time
import numpy, pandas, pyarrow, pyarrow.parquet as pq, pyarrow.compute
def status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
mode, script, annotations, submission = sys.argv[1:5]
if mode == "evaluate":
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "ooc_eval", script + "/__init__.py", submodule_search_locations=[script]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["ooc_eval"] = module
    spec.loader.exec_module(module)
    run = lambda a, s: module.evaluate(a, s, "live")["result"]
else:
    def run(a, s):
        frame = pandas.read_parquet(s)
        return {"deep_bytes": int(frame.memory_usage(deep=True).sum()), "rows": len(frame)}
# Warm the code paths on 5,000 rows first: the libraries' code pages that the first read
# touches count in RSS, and they are not data.
with tempfile.TemporaryDirectory() as tmp:
    small_a, small_s = os.path.join(tmp, "a.parquet"), os.path.join(tmp, "s.parquet")
    pq.write_table(pq.ParquetFile(annotations).read_row_group(0).slice(0, 5000), small_a)
    pq.write_table(pq.ParquetFile(submission).read_row_group(0).slice(0, 5000), small_s)
    run(small_a, small_s)
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # the peak (VmHWM) starts again from the current RSS
    reset = True
except OSError:
    reset = False
base = status_kb("VmRSS")
started = time.perf_counter()
out = {"result": run(annotations, submission)}
out["seconds"] = time.perf_counter() - started
out["growth_kb"] = status_kb("VmHWM") - base
out["peak_reset"] = reset
print(json.dumps(out))
"""


@dataclass(frozen=True)
class OocFigures:
    eval_peak_mib: float  # evaluate()'s peak RSS growth
    eval_s: float
    file_in_memory_mib: float  # the predictions as one DataFrame (memory_usage deep)
    load_peak_mib: float  # RSS growth of pandas.read_parquet of it
    file_mib: float  # on disk
    rows: int
    result: list


def build_parquet_starter(out_dir: Path) -> tuple[Path, Path, Path]:
    """Build the starter; returns (evaluation script folder, annotations, sample)."""
    from starters.build import build_starter, sample_submissions

    zip_path = build_starter(STARTER, out_dir)
    folder = out_dir / f"{STARTER}-bundle"
    with zipfile.ZipFile(zip_path) as bundle:
        bundle.extractall(folder)
    with zipfile.ZipFile(folder / "evaluation_script.zip") as script:
        script.extractall(folder / "evaluation_script")
    sample = sample_submissions(out_dir, [STARTER])[STARTER]["live"]
    return folder / "evaluation_script", folder / "annotations" / "live_targets.parquet", sample


def run_child(mode: str, script: Path, annotations: Path, submission: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(script), str(annotations), str(submission)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_ooc(out_dir: Path) -> OocFigures:
    script, annotations, sample = build_parquet_starter(out_dir)
    evaluated = run_child("evaluate", script, annotations, sample)
    loaded = run_child("load", script, annotations, sample)
    loaded.update(loaded.pop("result"))
    return OocFigures(
        eval_peak_mib=evaluated["growth_kb"] / 1024,
        eval_s=evaluated["seconds"],
        file_in_memory_mib=loaded["deep_bytes"] / 1024**2,
        load_peak_mib=loaded["growth_kb"] / 1024,
        file_mib=sample.stat().st_size / 1024**2,
        rows=loaded["rows"],
        result=evaluated["result"],
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(measure_ooc(Path(tmp)))

"""Where a sandboxed child's CPU goes: `python -m bench.profile_sandbox [--children 200]`.

No database, no broker, no web: the warm parent driven directly, as a worker's pool
process drives it (workers.sandbox.forkserver.WarmEvaluator.run), with the tabular
starter's real evaluate() on its 400-row sample submission, the files staged in a
storage folder the children must not see (hidden, as MEDIA_ROOT is) and exposed one by
one. In the same run, bench/realistic.py's plain fork loop (BARE_LOOP, mode fork: no
sandbox) on the same files. Printed, per child: its CPU as the worker records it
(cpu_s: fork to its report), of which evaluate()'s own, what it costs once reaped (its
exit too), its minor page faults; per child, the warm parent's own CPU and faults; the
same for the plain loop's children and its parent.

`--perf` and `--strace` attach `perf stat` / `strace -c -f` to the warm parent (and so
its children) for the measured children: counters and a syscall table. strace slows
everything: take only its counts from that run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTER = "tabular_classification"
PHASE = "dev"

# After the loop's own summary line: what its reaped children cost in all (their exits
# too) and their minor faults, and its own faults, to set beside the warm parent's.
BARE_TRAILER = """
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
me = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"children_cpu_s": kids.ru_utime + kids.ru_stime, "each_s": children,
                  "children_minflt": kids.ru_minflt,
                  "parent_loop_cpu_s": cpu() - cpu0, "parent_minflt": me.ru_minflt}))
"""


def proc_stat(pid: int) -> dict[str, float]:
    """A process's own and reaped children's CPU seconds and minor faults (/proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # Fields from 3 (state): minflt 10, cminflt 11, utime 14, stime 15, cutime 16, cstime 17.
    at = {n: float(fields[n - 3]) for n in (10, 11, 14, 15, 16, 17)}
    return {
        "cpu_s": (at[14] + at[15]) / CLK_TCK,
        "minflt": at[10],
        "children_cpu_s": (at[16] + at[17]) / CLK_TCK,
        "children_minflt": at[11],
    }


def stage(folder: Path) -> tuple[Path, Path, Path, Path]:
    """The starter built; its script unpacked (the script cache); the annotation and the
    sample submission in the storage folder. Returns (script root, annotation,
    submission, storage)."""
    from starters.build import build_starter, sample_submissions

    built = folder / "built"
    zip_path = build_starter(STARTER, built)
    storage, cache = folder / "media", folder / "cache"
    script_root = cache / "scripts" / "tabular"
    with zipfile.ZipFile(zip_path) as bundle:
        config = bundle.read("challenge_config.yaml")
        annotation = storage / "annotations" / "dev_annotations.csv"
        annotation.parent.mkdir(parents=True)
        annotation.write_bytes(bundle.read("annotations/dev_annotations.csv"))
        script_zip = folder / "evaluation_script.zip"
        script_zip.write_bytes(bundle.read("evaluation_script.zip"))
    assert b"annotations/dev_annotations.csv" in config
    from workers.sandbox.runner import extract_script

    extract_script(script_zip, script_root)
    submission = storage / "submissions" / "1" / "submission.csv"
    submission.parent.mkdir(parents=True)
    shutil.copyfile(sample_submissions(built)[STARTER][PHASE], submission)
    for path in [storage, *storage.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    folder.chmod(0o755)
    return script_root, annotation, submission, storage


def attach(tool: str, pid: int, out: Path) -> subprocess.Popen | None:
    if tool == "record":
        # Kernel and native frames of the parent and its children (a child's own pid is
        # not the parent's: `perf report --pid PARENT` and the rest tell them apart).
        command = ["perf", "record", "-e", "cpu-clock", "-g", "-p", str(pid), "-o", str(out)]
    elif tool == "perf":
        command = ["perf", "stat", "-e", "task-clock,page-faults,context-switches,cpu-migrations",
                   "-p", str(pid), "-o", str(out)]  # fmt: skip
    else:
        command = ["strace", "-c", "-f", "-qq", "-p", str(pid), "-o", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the first measured child
    return proc


class Sandboxed:
    """One warm parent, as a pool process keeps it, measured over batches of children."""

    def __init__(self, script_root: Path, annotation: Path, submission: Path, warm: int) -> None:
        from workers.sandbox.forkserver import WarmEvaluator
        from workers.sandbox.runner import Limits

        self.evaluator = WarmEvaluator(script_root, key="profile")
        self.limits = Limits(time_limit_s=60, memory_mb=2048, max_file_mb=256)
        self.annotation, self.submission = annotation, submission
        for _ in range(warm):  # the warm parent learns the lazy imports
            self.one()

    def one(self):
        outcome = self.evaluator.run(
            annotation_file=self.annotation,
            submission_file=self.submission,
            phase_codename=PHASE,
            splits={"dev_split": ["Accuracy", "Macro-F1"]},
            limits=self.limits,
            submission_metadata={"id": 1},
        )
        if not outcome.ok:
            raise SystemExit(f"evaluation failed: {outcome.failure} {outcome.message}\n"
                             f"{outcome.traceback}\n{outcome.stderr}")  # fmt: skip
        return outcome

    def batch(self, n: int) -> dict:
        pid = self.evaluator.pid
        time.sleep(0.2)  # the standby forked, the last child reaped
        before, started = proc_stat(pid), time.perf_counter()
        outcomes = [self.one() for _ in range(n)]
        time.sleep(0.2)
        after, wall = proc_stat(pid), time.perf_counter() - started
        return {
            "n": n,
            "wall_s": wall,
            "child_cpu_ms": [o.cpu_s * 1000 for o in outcomes],
            "evaluate_cpu_ms": [o.evaluate_cpu_s * 1000 for o in outcomes],
            "reaped_cpu_ms": (after["children_cpu_s"] - before["children_cpu_s"]) * 1000,
            "child_minflt": after["children_minflt"] - before["children_minflt"],
            "parent_cpu_ms": (after["cpu_s"] - before["cpu_s"]) * 1000,
            "parent_minflt": after["minflt"] - before["minflt"],
            "sandbox": outcomes[-1].sandbox,
        }


def traced(sandboxed: Sandboxed, n: int, tool: str, out: Path) -> None:
    pid = sandboxed.evaluator.pid
    tracer = attach(tool, pid, out)
    print(f"{tool}: warm parent {pid}, output {out}")
    sandboxed.batch(n)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(timeout=30)
    if tool != "record":
        print(out.read_text())


def plain(script_root: Path, annotation: Path, submission: Path, calls: int) -> dict:
    from bench.bare_loop import BARE_LOOP

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BARE_LOOP + BARE_TRAILER,
            str(script_root),
            str(annotation),
            str(submission),
            str(calls),
            "fork",
        ],  # fmt: skip
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.stdout.readline().strip() == "go"
    proc.stdin.write("\n")
    proc.stdin.flush()
    summary = json.loads(proc.stdout.readline())
    totals = json.loads(proc.stdout.readline())
    proc.wait(timeout=60)
    return {
        "n": calls,
        "child_cpu_ms": summary["cpu_s"] * 1000,
        "each_cpu_ms": [s * 1000 for s in totals["each_s"]],
        "reaped_cpu_ms": totals["children_cpu_s"] * 1000,
        "child_minflt": totals["children_minflt"],
        "parent_cpu_ms": totals["parent_loop_cpu_s"] * 1000,
        "wall_s": summary["wall_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_sandbox")
    parser.add_argument("--children", type=int, default=200, help="of each kind, in all")
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="batches of each kind, sandboxed and plain in turn (S P P S ...): a drift in the "
        "machine's speed (other processes) falls on both alike",
    )
    parser.add_argument("--warm", type=int, default=10, help="unmeasured evaluations first")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain fork loop")
    parser.add_argument("--perf", action="store_true", help="perf stat the warm parent's tree")
    parser.add_argument("--strace", action="store_true", help="strace -c -f the warm parent")
    parser.add_argument("--record", action="store_true", help="perf record -g the same tree")
    parser.add_argument("--trace-out", help="where perf/strace write (default: a temp file)")
    parser.add_argument("--json", action="store_true", help="the raw figures as JSON too")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="profile-sandbox-"))
    batches: dict[str, list[dict]] = {"sandboxed": [], "plain": []}
    load = [os.getloadavg()[0]]
    try:
        from django.conf import settings

        # The worker's settings that shape a child (the rest: the defaults): the storage and
        # the script cache are hidden from it, as MEDIA_ROOT and EVALUATION_CACHE_DIR are.
        settings.configure(
            MEDIA_ROOT=str(folder / "media"), EVALUATION_CACHE_DIR=str(folder / "cache")
        )
        script_root, annotation, submission, _ = stage(folder)
        sandboxed = Sandboxed(script_root, annotation, submission, args.warm)
        try:
            tool = "perf" if args.perf else "strace" if args.strace else "record" * args.record
            if tool:
                out = Path(args.trace_out or tempfile.mktemp(prefix="profile-sandbox-"))
                traced(sandboxed, args.children, tool, out)
                return 0
            n = max(args.children // args.rounds, 1)
            for i in range(args.rounds):
                order = ("sandboxed", "plain") if i % 2 == 0 else ("plain", "sandboxed")
                for kind in order:
                    if kind == "sandboxed":
                        batches[kind].append(sandboxed.batch(n))
                    elif not args.no_plain:
                        batches[kind].append(plain(script_root, annotation, submission, n))
        finally:
            sandboxed.evaluator.shutdown()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load.append(os.getloadavg()[0])

    def total(kind: str, key: str) -> float:
        return sum(b[key] for b in batches[kind]) / sum(b["n"] for b in batches[kind])

    s = batches["sandboxed"]
    children = [ms for b in s for ms in b["child_cpu_ms"]]
    evaluate = [ms for b in s for ms in b["evaluate_cpu_ms"]]
    outside = [c - e for c, e in zip(children, evaluate, strict=True)]
    child, mean = statistics.median(children), statistics.fmean(children)
    n = len(children)
    print(f"load average {load[0]:.2f} -> {load[1]:.2f}; {n} children of each kind")
    print(f"sandbox {s[-1]['sandbox']}")
    print(f"sandboxed child  cpu_s p50 {child:6.1f} ms  mean {mean:6.1f} ms"
          f"  evaluate() p50 {statistics.median(evaluate):6.1f} ms"
          f"  outside evaluate() p50 {statistics.median(outside):5.2f} ms")  # fmt: skip
    print(f"                 reaped (its exit too) mean {total('sandboxed', 'reaped_cpu_ms'):6.1f} ms"
          f"  minor faults {total('sandboxed', 'child_minflt'):7.0f}")  # fmt: skip
    print(f"warm parent      {total('sandboxed', 'parent_cpu_ms'):6.2f} ms per child"
          f"  minor faults {total('sandboxed', 'parent_minflt'):6.0f} per child")  # fmt: skip
    if batches["plain"]:
        fork = total("plain", "child_cpu_ms")
        fork_p50 = statistics.median(ms for b in batches["plain"] for ms in b["each_cpu_ms"])
        print(f"plain fork child cpu p50  {fork_p50:6.1f} ms  mean {fork:6.1f} ms"
              f"  reaped mean {total('plain', 'reaped_cpu_ms'):6.1f} ms"
              f"  minor faults {total('plain', 'child_minflt'):7.0f}")  # fmt: skip
        print(f"plain loop parent         {total('plain', 'parent_cpu_ms'):6.2f} ms per child")
        print(f"child_over_fork_child     {child / fork:.3f} (p50 / mean, as the bench; target <= 1.15)"
              f"  p50 / p50 {child / fork_p50:.3f}  mean / mean {mean / fork:.3f}")  # fmt: skip
    if args.json:
        print(json.dumps(batches))
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.exit(main())

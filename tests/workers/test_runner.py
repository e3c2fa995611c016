"""evaluate() runs contained on both paths: cold (a fresh interpreter per evaluation) and warm
(a child forked from a parent that imported the script once). Same limits, same reports.

No database. The sandbox runs as a uid of its own for this module, not 65534: other test
runs on the machine use 65534 at the same time, and the process limit and the "nothing
left behind" checks count every process of the uid.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from workers.sandbox import evaluators as evaluator_pool
from workers.sandbox import runner
from workers.sandbox.evaluators import get_evaluator, run_evaluation, shutdown_all
from workers.sandbox.forkserver import WarmEvaluator
from workers.sandbox.limits import Limits

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not ROOT, reason="the sandbox drops to another uid and makes namespaces only as root"
)
SPLITS = {"test": ["score"]}

HOSTILE_SCRIPT = """
import os
import socket

OK = {"result": [{"test": {"score": 0.5}}]}


def evaluate(annotation_file, submission_file, phase_codename, **kwargs):
    with open(submission_file) as fh:
        mode, _, arg = fh.read().partition(" ")
    print(f"evaluating {mode}")
    if mode == "ok":
        with open(annotation_file) as fh:
            annotation = fh.read()
        return {
            **OK,
            "submission_result": {
                "metadata": kwargs["submission_metadata"],
                "phase": phase_codename,
                "annotation": annotation,
                "uid": os.getuid(),
                "pid": os.getpid(),
            },
        }
    if mode == "loop":
        while True:
            pass
    if mode == "memory":
        return {**OK, "size": len(bytearray(8 * 1024**3))}
    if mode == "forkbomb":
        while True:
            os.fork()
    if mode == "network":
        conn = socket.socket()
        conn.settimeout(5)
        conn.connect(("127.0.0.1", int(arg)))
        return OK
    if mode == "environment":
        try:
            with open(f"/proc/{arg}/environ", "rb") as fh:
                worker = fh.read().decode(errors="replace")
        except OSError as exc:
            worker = type(exc).__name__
        return {**OK, "submission_result": {"environ": dict(os.environ), "worker": worker}}
    if mode == "write":
        written = {}
        for target in arg.split(","):
            try:
                with open(target, "w") as fh:
                    fh.write("x")
                written[target] = "written"
            except OSError as exc:
                written[target] = type(exc).__name__
        return {**OK, "submission_result": written}
    if mode == "read":
        try:
            with open(arg) as fh:
                seen = fh.read()
        except OSError as exc:
            seen = type(exc).__name__
        return {**OK, "submission_result": {"seen": seen}}
    if mode == "raise":
        raise ValueError("the submission has no 'label' column")
    if mode == "chatty":
        print("x" * 5000)
        return OK
    return {
        "unknown_split": {"result": [{"nope": {"score": 1}}]},
        "missing_label": {"result": [{"test": {"other": 1}}]},
        "not_a_number": {"result": [{"test": {"score": "high"}}]},
        "no_result": {"scores": {"score": 1}},
    }[mode]
"""


def write_script(root: Path, source: str) -> Path:
    package = root / "evaluation_script"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(source))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="module")
def base():
    """A world-readable folder: the child runs as another uid, and pytest's tmp_path sits
    under a 0700 folder shared with other runs, which we leave alone."""
    folder = Path(tempfile.mkdtemp(prefix="evalserver-test-runner-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def sandbox_uid():
    uid = 61000 + os.getpid() % 4000
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "SANDBOX_UID", uid)
        yield uid
    shutdown_all()


@pytest.fixture(scope="module")
def script(base) -> Path:
    return write_script(base / "hostile", HOSTILE_SCRIPT)


@pytest.fixture(scope="module")
def annotation(base) -> Path:
    path = base / "annotation.txt"
    path.write_text("the answers")
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def warm_evaluator(script):
    evaluator = WarmEvaluator(script, key="hostile")
    yield evaluator
    evaluator.shutdown()


class Runner:
    """Runs one mode of HOSTILE_SCRIPT on one path."""

    def __init__(self, path, script, annotation, base, warm):
        self.path, self.script, self.annotation, self.base = path, script, annotation, base
        self.warm = warm

    def __call__(self, mode: str, **limits) -> runner.Outcome:
        submission = Path(tempfile.mkstemp(dir=self.base, suffix=".txt")[1])
        submission.write_text(mode)
        submission.chmod(0o644)
        kwargs = {
            "annotation_file": self.annotation,
            "submission_file": submission,
            "phase_codename": "dev",
            "splits": SPLITS,
            "limits": Limits(**{"time_limit_s": 10, "memory_mb": 1024, **limits}),
            "submission_metadata": {"id": 7, "participant_team_name": "Charlie's"},
        }
        try:
            if self.path == "warm":
                return self.warm.run(**kwargs)
            return run_evaluation(script_root=self.script, **kwargs)
        finally:
            submission.unlink()

    def still_serves(self) -> None:
        """After a hostile run, the next submission is evaluated as usual (warm: by the same
        parent, which survived)."""
        pid = self.warm.pid
        outcome = self("ok")
        assert outcome.ok, (outcome.failure, outcome.message, outcome.stderr)
        if self.path == "warm":
            assert self.warm.pid == pid


@pytest.fixture(params=["cold", "warm"])
def run(request, script, annotation, base, warm_evaluator) -> Runner:
    runner_ = Runner(request.param, script, annotation, base, warm_evaluator)
    if request.param == "warm":
        warm_evaluator.start()
    return runner_


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except FileNotFoundError:
                pass
    return found


def test_it_returns_the_parsed_scores_and_passes_the_arguments(run, sandbox_uid):
    outcome = run("ok")
    assert outcome.ok, (outcome.failure, outcome.message, outcome.stderr)
    assert outcome.parsed.scores == {"test": {"score": 0.5}}
    result = outcome.parsed.submission_result
    assert result["metadata"] == {"id": 7, "participant_team_name": "Charlie's"}
    assert result["phase"] == "dev"
    assert result["annotation"] == "the answers"
    assert "evaluating ok" in outcome.stdout
    assert outcome.sandbox["warm"] == (run.path == "warm")
    if ROOT:
        assert result["uid"] == sandbox_uid
        # Its own PID namespace, so all it starts dies with it.
        assert result["pid"] == 1
        assert outcome.sandbox["network_isolated"] and outcome.sandbox["pid_namespace"]


def test_an_infinite_loop_is_stopped_at_the_time_limit(run):
    started = time.monotonic()
    outcome = run("loop", time_limit_s=1)
    assert outcome.failure == "timeout"
    assert "time limit of 1 s" in outcome.message
    assert time.monotonic() - started < 3
    run.still_serves()


def test_a_busy_loop_is_stopped_at_the_cpu_limit(run):
    outcome = run("loop", time_limit_s=10, cpu_time_s=1)
    assert outcome.failure == "cpu", (outcome.failure, outcome.message)
    run.still_serves()


def test_allocating_8_gib_fails_with_memory(run):
    outcome = run("memory", memory_mb=1024)
    assert outcome.failure == "memory", (outcome.failure, outcome.message, outcome.stderr)
    assert "1024 MB" in outcome.message
    run.still_serves()


@needs_root
def test_a_fork_bomb_fails_with_processes_and_leaves_nothing_behind(run, sandbox_uid):
    outcome = run("forkbomb", max_processes=16)
    assert outcome.failure == "processes", (outcome.failure, outcome.message, outcome.stderr)
    assert "16 processes" in outcome.message
    # Killed when run() returns (warm: reaped just after the reply); gone within moments.
    deadline = time.monotonic() + 2
    while processes_of(sandbox_uid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert processes_of(sandbox_uid) == []
    run.still_serves()


@needs_root
def test_the_network_is_unreachable(run):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        outcome = run(f"network {server.getsockname()[1]}")
        assert outcome.failure == "network", (outcome.failure, outcome.message, outcome.traceback)
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
    run.still_serves()


@needs_root
def test_it_writes_only_in_its_working_folder(run, script):
    targets = [script / "evaluation_script" / "evil.py", script / "evil", Path("/work/evil")]
    outcome = run("write " + ",".join(map(str, [*targets, "inside.txt"])))
    assert outcome.ok, (outcome.failure, outcome.message, outcome.stderr)
    written = outcome.parsed.submission_result
    assert written["inside.txt"] == "written"
    for target in targets:
        # The script's folder is bound read-only into the child (OSError: EROFS).
        assert written[str(target)] in ("PermissionError", "OSError")
        assert not target.exists()
    run.still_serves()


def test_an_exception_is_reported_with_its_traceback(run):
    outcome = run("raise")
    assert outcome.failure == "exception"
    assert outcome.message == "evaluate() raised ValueError: the submission has no 'label' column"
    assert 'raise ValueError("the submission has no' in outcome.traceback
    run.still_serves()


@pytest.mark.parametrize(
    ("mode", "named"),
    [
        ("unknown_split", "names split 'nope', which is not a split of this phase"),
        ("not_a_number", "label 'score' is 'high', not a number"),
        ("no_result", "returned no 'result' key"),
    ],
)
def test_a_malformed_result_is_named(run, mode, named):
    outcome = run(mode)
    assert outcome.failure == "result"
    assert named in outcome.message
    run.still_serves()


def test_a_result_lacking_a_label_is_accepted_with_a_warning(run):
    outcome = run("missing_label")
    assert outcome.ok, outcome.message
    assert outcome.parsed.scores == {"test": {}}
    assert outcome.parsed.missing_labels == {"test": ["score"]}
    assert "lacks label(s) score" in outcome.parsed.warnings()[0]


def test_output_is_capped(run):
    outcome = run("chatty", log_max_bytes=1000)
    assert outcome.ok
    assert outcome.stdout.startswith("evaluating chatty\nxxx")
    assert outcome.stdout.endswith("[output truncated at 1000 bytes]")
    assert len(outcome.stdout) < 1100


def test_the_environment_holds_no_secrets(monkeypatch, script, annotation, base):
    secrets = {
        "DATABASE_URL": "postgres://evalserver:hunter2@db/evalserver",
        "SECRET_KEY": "not-for-evaluate-0123456789",
        "CELERY_BROKER_URL": "redis://:hunter2@redis:6379/0",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    fresh = WarmEvaluator(script, key="environment")  # started after the secrets were set
    try:
        for path in ("cold", "warm"):
            outcome = Runner(path, script, annotation, base, fresh)(f"environment {os.getpid()}")
            assert outcome.ok, (path, outcome.failure, outcome.message, outcome.stderr)
            seen = outcome.parsed.submission_result
            assert not set(secrets) & set(seen["environ"]), path
            for value in secrets.values():
                assert value not in repr(seen), path
            if ROOT:
                # Not even visible: the child's /proc shows its own PID namespace only.
                assert seen["worker"] in ("PermissionError", "FileNotFoundError"), path
    finally:
        fresh.shutdown()


@pytest.mark.parametrize("path", ["cold", "warm"])
def test_a_script_that_cannot_be_imported_fails_with_script(path, base, annotation):
    broken = write_script(base / f"broken-{path}", "import no_such_module_anywhere\n")
    evaluator = WarmEvaluator(broken, key=f"broken-{path}")
    outcome = Runner(path, broken, annotation, base, evaluator)("ok")
    assert outcome.failure == "script"
    assert "evaluation_script could not be imported: ModuleNotFoundError" in outcome.message
    assert "no_such_module_anywhere" in outcome.traceback
    assert not evaluator.alive()


@pytest.mark.parametrize("path", ["cold", "warm"])
def test_a_script_without_evaluate_fails_with_script(path, base, annotation):
    empty = write_script(base / f"empty-{path}", "VERSION = 1\n")
    evaluator = WarmEvaluator(empty, key=f"empty-{path}")
    outcome = Runner(path, empty, annotation, base, evaluator)("ok")
    assert outcome.failure == "script"
    assert "does not define evaluate()" in outcome.message


def test_the_warm_memory_limit_counts_from_what_the_script_loaded(base, annotation):
    """numpy alone maps over 100 MB before evaluate() runs; memory_mb is on top of that."""
    heavy = write_script(
        base / "heavy",
        """
        import numpy

        def evaluate(annotation_file, submission_file, phase_codename, **kwargs):
            with open(submission_file) as fh:
                size = int(fh.read().split()[1])
            return {"result": [{"test": {"score": len(bytearray(size * 1024**2))}}]}
        """,
    )
    evaluator = WarmEvaluator(heavy, key="heavy")
    try:
        run = Runner("warm", heavy, annotation, base, evaluator)
        outcome = run("allocate 48", memory_mb=64)
        assert outcome.ok, (outcome.failure, outcome.stderr)
        assert run("allocate 96", memory_mb=64).failure == "memory"
    finally:
        evaluator.shutdown()


def test_a_killed_warm_parent_is_started_again(script, annotation, base):
    evaluator = WarmEvaluator(script, key="killed")
    try:
        evaluator.start()
        first = evaluator.pid
        os.kill(first, signal.SIGKILL)
        outcome = Runner("warm", script, annotation, base, evaluator)("ok")
        assert outcome.ok, (outcome.failure, outcome.message)
        assert evaluator.pid != first
    finally:
        evaluator.shutdown()


def test_the_warm_parent_dies_with_its_worker(script):
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from workers.sandbox.forkserver import WarmEvaluator\n"
            "e = WarmEvaluator(sys.argv[1], key='k'); e.start()\n"
            "print(e.pid, flush=True); time.sleep(60)\n",
            str(script),
        ],
        cwd=Path(runner.__file__).parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        parent = int(worker.stdout.readline())
        assert Path(f"/proc/{parent}").exists()
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{parent}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not Path(f"/proc/{parent}").exists()


def test_get_evaluator_keeps_the_most_recently_used(script):
    evaluators = []
    try:
        for key in ("a", "b", "c"):
            evaluator = get_evaluator(f"lru-{key}", script, max_warm=2)
            evaluator.start()
            evaluators.append(evaluator)
        a, b, c = evaluators
        assert get_evaluator("lru-b", script, max_warm=2) is b
        assert not a.alive() and b.alive() and c.alive()
        assert get_evaluator("lru-a", script, max_warm=2) is not a  # evicted: a new one
    finally:
        shutdown_all()
    assert not any(e.alive() for e in evaluators)
    assert not evaluator_pool._evaluators


def test_the_warm_path_takes_the_same_arguments_as_the_cold_one(script, annotation, base):
    submission = base / "warm-path.txt"
    submission.write_text("ok")
    submission.chmod(0o644)
    try:
        outcome = get_evaluator(str(script.resolve()), script).run(
            annotation_file=annotation,
            submission_file=submission,
            phase_codename="dev",
            splits=SPLITS,
            limits=Limits(time_limit_s=10),
        )
        assert outcome.ok and outcome.sandbox["warm"]
        assert get_evaluator(str(script.resolve()), script).alive()
    finally:
        shutdown_all()


LEARNING_SCRIPT = """
import sys
import xml  # a package imported at load: its submodules may be learned

COUNTER = []
WARMED = []


def warm_up():
    WARMED.append(True)


def evaluate(annotation_file, submission_file, phase_codename, **kwargs):
    before = {name: name in sys.modules for name in ("xml.dom.minidom", "wave")}
    import xml.dom.minidom  # noqa: F401 - lazily, as pandas and scikit-learn do
    import wave  # noqa: F401 - not under a package the script imported
    COUNTER.append(1)
    return {
        "result": [{"test": {"score": 1.0}}],
        "submission_result": {"before": before, "calls": len(COUNTER), "warmed": WARMED},
    }
"""


def test_the_warm_parent_learns_lazy_imports_and_nothing_else_of_a_child(base, annotation):
    """Children report what they imported; the parent imports those submodules of packages
    it has (so the next child starts warm), never other modules, and no child's state (a
    module global here) reaches the next child. The host's warm_up() ran once, before."""
    outcomes = _warm_runs(write_script(base / "learning", LEARNING_SCRIPT), annotation, 3)
    seen = [outcome.parsed.submission_result for outcome in outcomes]
    learned = outcomes[-1].sandbox["learned_modules"]
    assert seen[0]["before"] == {"xml.dom.minidom": False, "wave": False}
    assert seen[1]["before"] == {"xml.dom.minidom": True, "wave": False}
    assert seen[2]["before"] == {"xml.dom.minidom": True, "wave": False}
    assert [s["calls"] for s in seen] == [1, 1, 1]  # each child starts from the parent
    assert all(s["warmed"] == [True] for s in seen)
    assert learned >= 1


def _warm_runs(script: Path, annotation: Path, times: int) -> list[runner.Outcome]:
    """`times` evaluations of `script` by one warm parent of its own, each asserted ok."""
    evaluator = WarmEvaluator(script, key=script.name)
    try:
        outcomes = []
        for _ in range(times):
            outcome = evaluator.run(
                annotation_file=annotation,
                submission_file=annotation,
                phase_codename="dev",
                splits=SPLITS,
                limits=Limits(time_limit_s=20),
            )
            assert outcome.ok, (outcome.failure, outcome.message, outcome.traceback)
            assert outcome.sandbox["warm"]
            outcomes.append(outcome)
        return outcomes
    finally:
        evaluator.shutdown()


RANDOM_SCRIPT = """
import random

import numpy


def evaluate(annotation_file, submission_file, phase_codename, **kwargs):
    return {
        "result": [{"test": {"score": 1.0}}],
        "submission_result": {"numpy": numpy.random.random(), "python": random.random()},
    }
"""


def test_every_warm_child_starts_from_a_random_state_of_its_own(base, annotation):
    """As a fresh interpreter would: numpy's global seed and Python's differ from child to
    child, though the script (and numpy) was loaded once, by the warm parent."""
    outcomes = _warm_runs(write_script(base / "random", RANDOM_SCRIPT), annotation, 4)
    drawn = [outcome.parsed.submission_result for outcome in outcomes]
    assert len({d["numpy"] for d in drawn}) == 4, drawn
    assert len({d["python"] for d in drawn}) == 4, drawn


def test_the_storage_and_the_script_cache_are_hidden_but_for_the_childs_own_files(run, settings):
    """A world-readable file in MEDIA_ROOT or EVALUATION_CACHE_DIR (another challenge's
    annotation, another team's upload) is not even there for a child."""
    # Under the checkout's var/ (outside pytest's 0700 folders), which may itself lie under /tmp.
    var = Path(__file__).resolve().parents[2] / "var"
    var.mkdir(exist_ok=True)
    for setting in ("MEDIA_ROOT", "EVALUATION_CACHE_DIR"):
        folder = Path(tempfile.mkdtemp(prefix=f"hidden-{setting.lower()}-", dir=var))
        folder.chmod(0o755)
        secret = folder / "answers.csv"
        secret.write_text("the answers")
        secret.chmod(0o644)
        setattr(settings, setting, folder)
        outcome = run(f"read {secret}")
        assert outcome.ok, (outcome.failure, outcome.message, outcome.stderr)
        assert outcome.parsed.submission_result["seen"] == "FileNotFoundError", setting
        # Hidden from the child: under a folder it sees empty (a cover of its own, or /tmp's
        # when the checkout lies there).
        covered = outcome.sandbox["filesystem"]["covered"]
        assert any(folder.resolve().is_relative_to(cover) for cover in covered), (folder, covered)
        shutil.rmtree(folder)

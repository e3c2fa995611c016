"""The sandbox works wherever evalserver is installed (issue 10).

A copy of the checkout and a virtual environment placed under a root-owned 0700 folder
(as a pyenv interpreter under /root, or a checkout under a 0750 home, would be), served
by a real worker process: a script that imports lazily scores right, sees nothing else
of that folder, and has a /tmp of its own. The worker refuses to start, naming the
folder, when the sandbox cannot bind those folders into its children.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from challenges.models import Submission
from tests.services import ROOT, WorkerProcess, new_queue, publishing_to, worker_env
from tests.workers.pipeline_helpers import load_approved, participate, script_bundle, submit
from workers.sandbox.confine import closed_folder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox binds folders only as root"),
]

LAZY_EVALUATE = """
import os
import time

PRIVATE = PRIVATE_FOLDER


def _probe(fn):
    try:
        return fn()
    except OSError as exc:
        return type(exc).__name__


def _home():
    return {n: _probe(lambda n=n: sorted(os.listdir("/home/" + n))) for n in os.listdir("/home")}


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    # Everything below is imported lazily, inside evaluate(): only a sandboxed child shows
    # whether it can reach the interpreter's and the environment's folders.
    import csv
    import json

    with open(test_annotation_file, encoding="utf-8-sig") as fh:
        truth = json.load(fh)["answer"]
    with open(user_submission_file, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    from sklearn.metrics import accuracy_score

    score = accuracy_score([truth] * len(rows), [int(r["guess"]) for r in rows])
    # As real EvalAI scripts do: unpack into a fixed folder under /tmp.
    folder = "/tmp/fixed_challenge"
    leftovers = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    os.makedirs(folder, exist_ok=True)
    mine = os.path.join(folder, "submission.txt")
    with open(mine, "w") as fh:
        fh.write(rows[0]["tag"])
    time.sleep(float(rows[0]["sleep"]))
    with open(mine) as fh:
        intact = fh.read() == rows[0]["tag"]
    probes = {
        "root": _probe(lambda: sorted(os.listdir("/root"))),
        "private": _probe(lambda: sorted(os.listdir(PRIVATE))),
        "checkout": _probe(lambda: sorted(os.listdir(PRIVATE + "/checkout"))),
        "secret": _probe(lambda: open(PRIVATE + "/secret.txt").read()),
        "dotenv": _probe(lambda: open(PRIVATE + "/checkout/.env").read()),
        "code": _probe(lambda: open(PRIVATE + "/checkout/evalserver/settings.py").read()[:10]),
        "home": _probe(_home),
    }
    return {
        "result": [
            {"main": {"Score": score, "Other": len(leftovers)}},
            {"hidden": {"Score": score, "Other": 0}},
        ],
        "submission_result": {"probes": probes, "intact": intact, "leftovers": leftovers},
    }
"""


def _python_name() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def make_private_checkout(parent: Path) -> tuple[Path, Path]:
    """(the 0700 folder, the checkout in it): the project's code and a virtual environment
    with this one's packages (hard links, so it is quick), on this machine's interpreter."""
    private = Path(tempfile.mkdtemp(prefix="private-", dir=parent))  # 0700, root's
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    checkout = private / "checkout"
    for name in ("evalserver", "challenges", "workers", "frontend", "starters"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "manage.py", checkout / "manage.py")
    # Bait: what a home folder holds beside the checkout, and the .env `make demo` writes.
    (private / "secret.txt").write_text("the answers")
    (checkout / ".env").write_text("SECRET_KEY=never-for-the-sandbox-0123456789\n")
    venv = checkout / ".venv"
    base = Path(sys.base_prefix) / "bin" / _python_name()
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / _python_name() / "site-packages"
    source = Path(sysconfig.get_paths()["purelib"])
    copied = subprocess.run(["cp", "-al", f"{source}/.", f"{site}/"], capture_output=True)
    if copied.returncode != 0:  # another file system: a plain copy
        subprocess.run(["cp", "-a", f"{source}/.", f"{site}/"], check=True)
    # The editable install points at this checkout: the copy must import its own code.
    for path in site.iterdir():
        if "evalserver" in path.name and (
            path.name.startswith("__editable__") or path.suffix in (".pth", ".dist-info")
        ):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return private, checkout


@pytest.fixture(scope="module")
def private_checkout():
    var = ROOT / "var"
    var.mkdir(exist_ok=True)
    private, checkout = make_private_checkout(var)
    yield private, checkout
    shutil.rmtree(private, ignore_errors=True)


@pytest.fixture(scope="module")
def private_worker(private_checkout, pipeline_env, tmp_path_factory):
    private, checkout = private_checkout
    media, cache = checkout / "var" / "media", checkout / "var" / "cache"
    media.mkdir(parents=True)
    cache.mkdir(parents=True)
    queue = new_queue()
    env = worker_env(
        **{**pipeline_env, "media_root": media, "cache_dir": cache, "queue": queue},
        EVALUATION_TIME_LIMIT_S="60",
        EVALUATION_MAX_FILE_MB="16",
    )
    worker = WorkerProcess(
        env=env,
        log_path=tmp_path_factory.mktemp("private-worker") / "worker.log",
        node=f"private-{uuid.uuid4().hex[:6]}@%h",
        python=str(checkout / ".venv" / "bin" / "python"),
        cwd=checkout,
    ).start(timeout=120)
    yield worker, media, queue
    worker.stop()


@pytest.fixture
def served(private_worker, transactional_db, settings, pipeline_env, users, host_teams, api):
    worker, media, queue = private_worker
    settings.MEDIA_ROOT = media
    with publishing_to(pipeline_env["broker_url"], queue):
        yield worker


def _rows(tag: str, sleep: float, guess: int = 42) -> str:
    # With a byte-order mark: reading it as utf-8-sig takes a codec imported lazily.
    return f"\ufeffguess,tag,sleep\n{guess},{tag},{sleep}\n"


def _wait(ids: list[int], timeout: float = 120) -> list[Submission]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(Submission.objects.filter(pk__in=ids).order_by("pk"))
        if all(r.is_final_state for r in rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"not final: {[(r.pk, r.status) for r in rows]}")


def _names_on_the_way(folder: Path, needed: list[Path]) -> set[str]:
    """The entries of `folder` that lie on the way to a needed path: all a child may see."""
    return {
        p.relative_to(folder).parts[0] for p in needed if p.is_relative_to(folder) and p != folder
    }


def test_a_lazily_importing_script_scores_from_a_checkout_under_a_private_folder_and_sees_nothing_else(
    served, private_checkout, users, host_teams, api
):
    private, checkout = private_checkout
    challenge = load_approved(
        script_bundle(LAZY_EVALUATE.replace("PRIVATE_FOLDER", repr(str(private)))),
        users,
        host_teams["alice"],
    )
    participate(users["charlie"], challenge)
    first = submit(api("charlie"), challenge, "probe", _rows("first", 2.5), name="a.csv")
    second = submit(api("charlie"), challenge, "probe", _rows("second", 2.5), name="b.csv")
    assert first.status_code == second.status_code == 201, first.content
    one, two = _wait([first.json()["id"], second.json()["id"]])
    for sub in (one, two):
        assert sub.status == Submission.Status.FINISHED, (sub.failure_message, sub.traceback)
        scores = {r.phase_split.dataset_split.codename: r.scores for r in sub.results.all()}
        assert scores["main"] == {"Score": 1.0, "Other": 0.0}
        # Both wrote /tmp/fixed_challenge/submission.txt at once; each read back its own.
        assert sub.submission_result["intact"] is True
        assert sub.submission_result["leftovers"] == []
    assert one.started_at < two.finished_at and two.started_at < one.finished_at, (
        "the two evaluations did not overlap"
    )

    # What the child could see: the way to its folders and nothing else.
    probes = one.submission_result["probes"]
    needed = [Path(os.path.realpath(sys.base_prefix)), checkout / ".venv", checkout / "var"]
    assert probes["private"] == ["checkout"]
    assert set(probes["checkout"]) <= {".venv", "var"}, probes["checkout"]
    for bait in ("secret", "dotenv", "code"):
        assert probes[bait] in ("FileNotFoundError", "PermissionError"), (bait, probes[bait])
    if isinstance(probes["root"], list):  # /root covered: only the way to the interpreter
        assert set(probes["root"]) <= _names_on_the_way(Path("/root"), needed), probes["root"]
    else:
        assert probes["root"] == "PermissionError"
    if isinstance(probes["home"], dict):
        for name, seen in probes["home"].items():
            home = Path("/home") / name
            if home.is_dir() and not home.stat().st_mode & stat.S_IXOTH:
                assert seen in ("PermissionError", "FileNotFoundError") or set(seen) <= (
                    _names_on_the_way(home, needed)
                ), (name, seen)
    covered = one.execution["sandbox"]["filesystem"]["covered"]
    assert any(private.is_relative_to(folder) for folder in covered), covered

    # A third evaluation, later: nothing of the first two is left in its /tmp.
    third = submit(api("charlie"), challenge, "probe", _rows("third", 0), name="c.csv")
    (done,) = _wait([third.json()["id"]])
    assert done.status == Submission.Status.FINISHED, done.failure_message
    assert done.submission_result["leftovers"] == []
    assert not Path("/tmp/fixed_challenge").exists()


HOGS = {
    "memory": "    return {'n': len(bytearray(8 * 1024**3))}\n",
    "file_size": (
        "    with open('big.bin', 'wb') as fh:\n"
        "        for _ in range(64):\n"
        "            fh.write(b'x' * 1024 * 1024)\n"
    ),
    "processes": "    while True:\n        os.fork()\n",
}


def hog_bundle(kind: str) -> bytes:
    source = f"import os\n\n\ndef evaluate(a, s, p, **kwargs):\n{HOGS[kind]}"
    return script_bundle(
        source, title=f"Hog {kind}", resources={"memory_mb": 512, "time_limit_s": 30}
    )


@pytest.mark.parametrize("kind", sorted(HOGS))
def test_evaluate_local_and_the_worker_fail_a_hog_with_the_same_class(
    kind, served, users, host_teams, api, tmp_path, settings
):
    from django.core.management.base import CommandError

    from tests.workers.pipeline_helpers import run_local

    bundle = tmp_path / "hog.zip"
    bundle.write_bytes(hog_bundle(kind))
    submission = tmp_path / "s.csv"
    submission.write_text("1\n")
    settings.EVALUATION_MAX_FILE_MB = 16  # as the worker's environment says
    with pytest.raises(CommandError) as local:
        run_local(bundle, "probe", submission)
    local_kind = str(local.value).split(":", 1)[0]

    challenge = load_approved(bundle.read_bytes(), users, host_teams["alice"])
    participate(users["charlie"], challenge)
    response = submit(api("charlie"), challenge, "probe", "1\n")
    assert response.status_code == 201, response.content
    (done,) = _wait([response.json()["id"]])
    assert done.status == Submission.Status.FAILED
    assert done.failure_kind == local_kind == kind, (done.failure_message, str(local.value))


def test_a_worker_refuses_to_start_when_its_children_cannot_reach_the_interpreter(
    private_checkout, pipeline_env, tmp_path
):
    """Without CAP_SYS_ADMIN the sandbox cannot bind the environment's folders into a
    child: the worker's self-check names the folder, the uid and what to do, and it exits."""
    if not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to drop CAP_SYS_ADMIN")
    private, checkout = private_checkout
    env = worker_env(**{**pipeline_env, "queue": new_queue()})
    worker = WorkerProcess(
        env=env,
        log_path=tmp_path / "worker.log",
        node=f"refused-{uuid.uuid4().hex[:6]}@%h",
        python=str(checkout / ".venv" / "bin" / "python"),
        cwd=checkout,
        prefix=["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"],
    )
    with pytest.raises(RuntimeError, match="worker exited at start"):
        worker.start(timeout=120)
    assert worker.proc.returncode != 0
    log = worker.log()
    assert "this worker will not start" in log
    assert "runs as uid 65534 and cannot reach" in log
    # A folder uid 65534 cannot enter on the way to what it imports: /root for a pyenv
    # interpreter there, or the private folder holding the checkout and its environment.
    stdlib = os.path.dirname(os.__file__)
    named = re.search(r"cannot reach (\S+?):", log)
    assert named, log[-3000:]
    assert named[1] in {closed_folder(os.path.realpath(stdlib), 65534, 65534), str(private)}
    assert "What to do: run the worker as root with the SYS_ADMIN capability" in log
    assert " ready." not in log

"""evaluate() for a CodaLab or Codabench bundle: runs its ingestion and scoring programs.

This file is not imported by the platform: the loader (challenges.bundle.codalab) copies
its source into the evaluation package it builds for such a bundle, as `__init__.py`,
next to `codalab.json` (the manifest), `programs/` and `data/`. So it runs where any
evaluate() runs: in the sandboxed child (workers.sandbox), with its limits, its private
/tmp, no network, an empty environment. Standard library only.

For each task (split) of the phase it lays out what the formats expect,

    <task>/input/ref     the task's reference data
    <task>/input/res     the participant's files (the submission unzipped), or the
                         ingestion program's output for a code submission
    <task>/output        where scoring writes scores.txt / scores.json / detailed_results.html

and runs the program's `command` with `$program`, `$input`, `$output` (CodaLab) and the
fixed `/app/program`, `/app/input`, `/app/output` (Codabench) replaced by those folders.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_DETAILED_BYTES = 1024 * 1024
MAX_OUTPUT_CHARS = 200_000


class ProgramError(Exception):
    """A program failed; the message says which, how, and ends with its last output."""


def manifest() -> dict:
    with open(os.path.join(HERE, "codalab.json"), encoding="utf-8") as f:
        return json.load(f)


def interpreter(value: str) -> str:
    """The interpreter a program's `python` means: the evaluation's own unless mapped."""
    if not value or value == "default":
        return sys.executable
    found = shutil.which(value) if os.sep not in value else value
    return found or value


def unpack_submission(submission_file: str, dest: str) -> None:
    """A zip is unpacked (a single top folder is stepped into); any other file is copied."""
    os.makedirs(dest, exist_ok=True)
    if zipfile.is_zipfile(submission_file):
        with zipfile.ZipFile(submission_file) as zf:
            for info in zf.infolist():
                name = info.filename
                if name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1] == ".DS_Store":
                    continue
                target = os.path.realpath(os.path.join(dest, name))
                if not target.startswith(os.path.realpath(dest) + os.sep):
                    continue  # a name that leaves the folder is skipped, never followed
                zf.extract(info, dest)
        entries = [e for e in os.listdir(dest) if not e.startswith(".")]
        if len(entries) == 1 and os.path.isdir(os.path.join(dest, entries[0])):
            inner = os.path.join(dest, entries[0])
            for name in os.listdir(inner):
                shutil.move(os.path.join(inner, name), os.path.join(dest, name))
            os.rmdir(inner)
    else:
        shutil.copy(submission_file, os.path.join(dest, os.path.basename(submission_file)))


def substitute(command: str, paths: dict[str, str]) -> list[str]:
    """The command's words with the formats' placeholders and fixed paths replaced."""
    words = shlex.split(command)
    out = []
    for word in words:
        # Longest names first: $ingestion_program before $program, /app/input_data
        # before /app/input.
        for name in sorted(paths, key=len, reverse=True):
            word = word.replace(name, paths[name])
        out.append(word)
    return out


def own_app() -> bool:
    """Whether /app is the child's own: the writable tmpfs the sandbox mounts there (never
    a folder of the machine's, such as the platform's checkout, when run unconfined)."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split(" - ") for line in f]
    except OSError:
        return False
    ours = any(
        len(m) == 2 and m[0].split()[4] == "/app" and m[1].startswith("tmpfs ") for m in mounts
    )
    return ours and os.access("/app", os.W_OK)


def link_app(paths: dict[str, str]) -> None:
    """Point /app/program, /app/input, ... at this run's folders, where the sandbox gave
    the child an /app of its own (workers.sandbox.confine); else the command's words are
    all a program gets."""
    if not own_app():
        return
    for name, target in paths.items():
        if not name.startswith("/app/"):
            continue
        link = name
        if os.path.islink(link):
            os.unlink(link)
        elif os.path.exists(link):
            continue
        os.symlink(target, link)


def run_program(
    program: dict, paths: dict[str, str], cwd: str, python: str, what: str, timeout: float | None
) -> None:
    for name in [n for n in os.listdir("/app") if os.path.islink("/app/" + n)] if own_app() else []:
        if "/app/" + name not in paths:
            os.unlink("/app/" + name)  # the previous run's, not this one's
    link_app(paths)
    argv = substitute(program["command"], paths)
    if (
        argv
        and argv[0] in ("python", "python2", "python3")
        or (argv and argv[0].startswith("python") and argv[0][6:].replace(".", "").isdigit())
    ):
        argv[0] = python
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(python) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    sys.stdout.write(f"== {what}: {' '.join(argv)}\n")
    sys.stdout.flush()
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise ProgramError(f"The {what} could not be started: {exc}.") from None
    except subprocess.TimeoutExpired:
        raise ProgramError(f"The {what} did not finish within {timeout:g} s.") from None
    out = done.stdout.decode("utf-8", "replace")[-MAX_OUTPUT_CHARS:]
    err = done.stderr.decode("utf-8", "replace")[-MAX_OUTPUT_CHARS:]
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.stdout.flush()
    sys.stderr.flush()
    if done.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise ProgramError(f"The {what} exited with status {done.returncode}.\n{tail}".rstrip())


def parse_scores_text(text: str) -> dict[str, float]:
    """scores.txt: `key: value` lines, the space optional; other lines are skipped."""
    scores: dict[str, float] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        try:
            number = float(value.strip())
        except ValueError:
            continue
        if math.isfinite(number):
            scores[key.strip()] = number
    return scores


def parse_scores_json(text: str) -> dict[str, float]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ProgramError("scores.json must hold an object of key: number.")
    scores = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            scores[str(key)] = float(value)
    return scores


def read_scores(output: str) -> dict[str, float]:
    """scores.json when written (Codabench reads it first), else scores.txt."""
    for name, parse in (("scores.json", parse_scores_json), ("scores.txt", parse_scores_text)):
        path = os.path.join(output, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                return parse(f.read())
    raise ProgramError("The scoring program wrote neither scores.txt nor scores.json.")


def aggregate(how: str, values: list[float]) -> float | None:
    if not values:
        return None
    if how == "sum":
        return sum(values)
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    return sum(values) / len(values)


def to_labels(columns: list[dict], by_task: dict[str, dict[str, float]]) -> dict[str, dict]:
    """Per split: label -> value, columns matched by key as Codabench matches them; a
    `computation` column aggregates the columns at its `computation_indexes` over every
    task of the phase. A key no program wrote is left out: an empty cell."""
    by_index = {c["index"]: c for c in columns}
    pooled: dict[str, list[float]] = {}
    for scores in by_task.values():
        for column in columns:
            if column["key"] in scores:
                pooled.setdefault(column["key"], []).append(scores[column["key"]])
    result = {}
    for split, scores in by_task.items():
        row = {}
        for column in columns:
            if column.get("computation"):
                values = []
                for index in column.get("computation_indexes") or []:
                    source = by_index.get(index)
                    if source is not None:
                        values.extend(pooled.get(source["key"], []))
                value = aggregate(column["computation"], values)
            else:
                value = scores.get(column["key"])
            if value is not None:
                row[column["label"]] = value
        result[split] = row
    return result


def evaluate(annotation_file, submission_file, phase_codename, **kwargs):
    spec = manifest()
    phase = spec["phases"][phase_codename]
    python = interpreter(spec.get("interpreter", "default"))
    timeout = phase.get("time_limit_s")
    work = tempfile.mkdtemp(prefix="codalab-")
    submission = os.path.join(work, "submission")
    unpack_submission(submission_file, submission)
    by_task: dict[str, dict[str, float]] = {}
    detailed: dict[str, str] = {}
    for task in phase["tasks"]:
        root = os.path.join(work, task["split"])
        res = submission
        if task.get("ingestion"):
            res = os.path.join(root, "predictions")
            os.makedirs(res)
            program = os.path.join(root, "ingestion_program")
            shutil.copytree(os.path.join(HERE, task["ingestion"]["folder"]), program)
            input_data = os.path.join(HERE, task["input"]) if task.get("input") else root
            paths = {
                "$ingestion_program": program,
                "$submission_program": submission,
                "$program": program,
                "$input": input_data,
                "$output": res,
                "$shared": root,
                "/app/program": program,
                "/app/ingestion_program": program,
                "/app/ingested_program": submission,
                "/app/input_data": input_data,
                "/app/output": res,
                "/app/shared": root,
            }
            run_program(task["ingestion"], paths, program, python, "ingestion program", timeout)
        inputs = os.path.join(root, "input")
        output = os.path.join(root, "output")
        os.makedirs(inputs, exist_ok=True)
        os.makedirs(output)
        reference = os.path.join(HERE, task["reference"]) if task.get("reference") else None
        if reference:
            os.symlink(reference, os.path.join(inputs, "ref"))
        else:
            os.makedirs(os.path.join(inputs, "ref"))
        os.symlink(res, os.path.join(inputs, "res"))
        program = os.path.join(root, "scoring_program")
        shutil.copytree(os.path.join(HERE, task["scoring"]["folder"]), program)
        paths = {
            "$program": program,
            "$input": inputs,
            "$output": output,
            "$shared": root,
            "/app/program": program,
            "/app/input": inputs,
            "/app/output": output,
            "/app/shared": root,
        }
        run_program(task["scoring"], paths, program, python, "scoring program", timeout)
        by_task[task["split"]] = read_scores(output)
        html = os.path.join(output, "detailed_results.html")
        if spec.get("detailed_results") and os.path.isfile(html):
            with open(html, "rb") as f:
                detailed[task["split"]] = f.read(MAX_DETAILED_BYTES).decode("utf-8", "replace")
    rows = to_labels(phase["columns"], by_task)
    result = {"result": [{split: row} for split, row in rows.items()], "missing_labels_ok": True}
    result["submission_result"] = {"scores": by_task}
    if detailed:
        result["submission_result"]["detailed_results"] = detailed
    return result

"""CodaLab (v1) and Codabench (v2) bundles built in code, written from the formats'
documentation (competition.yaml keys, program `metadata` with `command:`, input/ref,
input/res, output/scores.txt). Each builder returns the zip's bytes."""

from __future__ import annotations

import io
import json
import zipfile


def zip_bytes(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content.encode() if isinstance(content, str) else content)
    return buf.getvalue()


# A CodaLab v1 scoring program: argv input/output, reads ref/truth.txt and res/answer.txt,
# writes scores.txt lines, the second one without the space after the colon.
V1_SCORE = """\
import os, sys
input_dir, output_dir = sys.argv[1], sys.argv[2]
truth = open(os.path.join(input_dir, "ref", "truth.txt")).read().split()
answer = open(os.path.join(input_dir, "res", "answer.txt")).read().split()
hits = sum(1 for t, a in zip(truth, answer) if t == a)
with open(os.path.join(output_dir, "scores.txt"), "w") as f:
    f.write("accuracy: %f\\n" % (hits / float(len(truth))))
    f.write("errors:%d\\n" % (len(truth) - hits))
with open(os.path.join(output_dir, "detailed_results.html"), "w") as f:
    f.write("<p>%d of %d right</p><script>alert(1)</script>" % (hits, len(truth)))
print("scored", hits)
"""

# Python 2 only: a print statement on line 3.
V1_SCORE_PY2 = """\
import sys
input_dir, output_dir = sys.argv[1], sys.argv[2]
print "scoring", input_dir
open(output_dir + "/scores.txt", "w").write("accuracy: 1.0\\n")
"""

V1_YAML = """\
title: Toy CodaLab competition
description: Guess the labels.
html:
  overview: overview.html
  evaluation: evaluation.html
  terms: terms_and_conditions.html
  data: data.html
phases:
  1:
    phasenumber: 1
    label: "Development"
    start_date: 2024-01-01
    max_submissions: 100
    execution_time_limit: 120
    scoring_program: scoring_program.zip
    reference_data: dev_reference.zip
    color: green
  2:
    phasenumber: 2
    label: "Final"
    start_date: 2024-06-01
    max_submissions: 3
    scoring_program: scoring_program.zip
    reference_data: final_reference.zip
leaderboard:
  leaderboards:
    RESULTS: &RESULTS
      label: Results
      rank: 1
  columns:
    accuracy:
      leaderboard: *RESULTS
      label: Accuracy
      rank: 1
      numeric_format: 4
    errors:
      leaderboard: *RESULTS
      label: Errors
      rank: 2
      sort: asc
    missing_key:
      leaderboard: *RESULTS
      label: Never written
      rank: 3
"""


def v1_bundle(
    *,
    score_source: str = V1_SCORE,
    folders: bool = False,
    top_folder: str = "",
    drop: tuple[str, ...] = (),
    docker_image: str | None = None,
) -> bytes:
    """A CodaLab v1 bundle: two phases, anchors, `$program $input $output`. `folders`:
    the program and data as folders named like the zips (a source repository's layout)."""
    program = {
        "metadata": "command: python $program/score.py $input $output\ndescription: toy\n",
        "score.py": score_source,
    }
    data = {
        "dev_reference.zip": {"truth.txt": "a b c d"},
        "final_reference.zip": {"truth.txt": "a a b b"},
    }
    yaml_text = V1_YAML + (f"docker_image: {docker_image}\n" if docker_image else "")
    files: dict[str, bytes | str] = {
        "competition.yaml": yaml_text,
        "overview.html": "<h1>Overview</h1>",
        "evaluation.html": "<p>Accuracy.</p>",
        "terms_and_conditions.html": "<p>Be nice.</p>",
        "data.html": "<p>Four labels.</p>",
        "logo.png": b"\x89PNG\r\n",
        "__MACOSX/._competition.yaml": b"junk",
    }
    if folders:
        for name, content in program.items():
            files[f"scoring_program/{name}"] = content
        for zip_name, members in data.items():
            for name, content in members.items():
                files[f"{zip_name[:-4]}/{name}"] = content
    else:
        files["scoring_program.zip"] = zip_bytes(program)
        for zip_name, members in data.items():
            files[zip_name] = zip_bytes(members)
    files = {
        k: v for k, v in files.items() if not any(k == d or k.startswith(d + "/") for d in drop)
    }
    if top_folder:
        files = {f"{top_folder}/{k}": v for k, v in files.items()}
    return zip_bytes(files)


# Codabench: fixed /app paths; scores.json for one task, scores.txt for the other.
V2_SCORE = """\
import json, os
ref = open("/app/input/ref/truth.txt").read().split()
res = open(os.path.join("/app/input/res", "answer.txt")).read().split()
hits = sum(1 for t, a in zip(ref, res) if t == a)
os.makedirs("/app/output", exist_ok=True)
if os.path.exists("/app/input/ref/use_json"):
    json.dump({"accuracy": hits / len(ref), "hits": hits}, open("/app/output/scores.json", "w"))
else:
    open("/app/output/scores.txt", "w").write("accuracy: %s\\nhits:%d\\n" % (hits / len(ref), hits))
open("/app/output/detailed_results.html", "w").write("<b>%d hits</b>" % hits)
"""

# An ingestion program: imports the participant's model.py, writes answer.txt.
V2_INGEST = """\
import os, sys
sys.path.insert(0, "/app/ingested_program")
import model
words = open("/app/input_data/questions.txt").read().split()
open(os.path.join("/app/output", "answer.txt"), "w").write(" ".join(model.predict(words)))
"""

V2_YAML = """\
version: 2
title: Toy Codabench competition
description: Two tasks, two phases.
image: logo.png
terms: terms.md
docker_image: codalab/codalab-legacy:py37
enable_detailed_results: true
pages:
  - title: Overview
    file: overview.md
tasks:
  - index: 0
    name: Easy
    scoring_program: scoring_program
    reference_data: easy_reference.zip
  - index: 1
    name: Hard
    scoring_program: scoring_program
    reference_data: hard_reference.zip
  - index: 2
    name: Code
    scoring_program: scoring_program
    ingestion_program: ingestion_program.zip
    input_data: input_data.zip
    reference_data: easy_reference.zip
phases:
  - index: 0
    name: Feedback
    start: 2024-01-01
    end: 2024-06-01
    max_submissions_per_day: 5
    execution_time_limit: 60
    tasks: [0, 1]
  - index: 1
    name: Code phase
    start: 2024-06-01
    tasks: [2]
leaderboards:
  - title: Results
    key: main
    columns:
      - title: Accuracy
        key: accuracy
        index: 0
        sorting: desc
      - title: Hits
        key: hits
        index: 1
        sorting: desc
      - title: Mean accuracy
        key: mean_accuracy
        index: 2
        computation: avg
        computation_indexes: [0]
"""


def v2_bundle(*, drop: tuple[str, ...] = (), top_folder: str = "", open_now: bool = False) -> bytes:
    """A Codabench v2 bundle: tasks as splits, /app paths, scores.json and scores.txt,
    an ingestion program, a computed column; the scoring program as a folder."""
    files: dict[str, bytes | str] = {
        # open_now: the feedback phase runs until 2099, so submissions are taken today.
        "competition.yaml": V2_YAML.replace("end: 2024-06-01", "end: 2099-01-01").replace(
            "start: 2024-06-01", "start: 2099-01-01"
        )
        if open_now
        else V2_YAML,
        "logo.png": b"\x89PNG\r\n",
        "terms.md": "Be *nice*.",
        "overview.md": "# Overview",
        "scoring_program/metadata.yaml": "command: python3 /app/program/score.py\n",
        "scoring_program/score.py": V2_SCORE,
        "easy_reference.zip": zip_bytes({"truth.txt": "a b c d"}),
        "hard_reference.zip": zip_bytes({"truth.txt": "a b x y", "use_json": ""}),
        "ingestion_program.zip": zip_bytes(
            {
                "metadata.yaml": "command: python /app/program/ingest.py\n",
                "ingest.py": V2_INGEST,
            }
        ),
        "input_data.zip": zip_bytes({"questions.txt": "a b c d"}),
    }
    files = {
        k: v for k, v in files.items() if not any(k == d or k.startswith(d + "/") for d in drop)
    }
    if top_folder:
        files = {f"{top_folder}/{k}": v for k, v in files.items()}
    return zip_bytes(files)


def result_zip(answer: str) -> bytes:
    return zip_bytes({"answer.txt": answer})


def code_zip() -> bytes:
    return zip_bytes({"model.py": "def predict(words):\n    return list(words)\n"})


def manifest_of(spec) -> dict:
    return json.loads(spec.evaluation_script.files["codalab.json"])


def python27_path() -> str:
    """The machine's Python 2.7 (pyenv's), which operators map codalab-legacy:py27 to."""
    import glob
    import os
    import shutil
    import subprocess

    root = os.environ.get("PYENV_ROOT") or ""
    if not root and shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    found = sorted(
        glob.glob(os.path.join(root or "/root/.pyenv", "versions", "2.7*", "bin", "python"))
    )
    assert found, "no Python 2.7 under pyenv root: install one (pyenv install 2.7.18)"
    return found[-1]

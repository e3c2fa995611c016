"""Challenge bundles built in memory for the loader's tests.

`starter_files()` lays a bundle out the way EvalAI-Starters' run.sh zips it:
challenge_config.yaml at the root, templates/*.html, logo.jpg, annotations/*.json
and a flat evaluation_script.zip (`zip -j`). Tests change the config or the files
and zip the result with `zip_bytes()`; `patch_entry()` forges header fields that
zipfile refuses to write (encryption flags, lying sizes, NUL in names).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

# Shared with the benchmarks.
from evalserver.testing import Entry, symlink, zip_bytes  # noqa: F401  (tests import them from here)

STARTER_CONFIG = """\
# Laid out like EvalAI-Starters' challenge_config.yaml.
title: Random Number Generator Challenge
short_description: Random number generation challenge for each submission
description: templates/description.html
evaluation_details: templates/evaluation_details.html
terms_and_conditions: templates/terms_and_conditions.html
image: logo.jpg
submission_guidelines: templates/submission_guidelines.html
leaderboard_description: Lorem ipsum dolor sit amet, consectetur adipiscing elit.
evaluation_script: evaluation_script.zip
remote_evaluation: False
is_docker_based: False
start_date: 2019-01-01 00:00:00
end_date: 2099-05-31 23:59:59
published: True

leaderboard:
  - id: 1
    schema:
      {
        "labels": ["Metric1", "Metric2", "Metric3", "Total"],
        "default_order_by": "Total",
      }

challenge_phases:
  - id: 1
    name: Dev Phase
    description: templates/challenge_phase_1_description.html
    leaderboard_public: False
    is_public: True
    is_submission_public: True
    start_date: 2019-01-19 00:00:00
    end_date: 2099-04-25 23:59:59
    test_annotation_file: annotations/test_annotations_devsplit.json
    codename: dev
    max_submissions_per_day: 5
    max_submissions_per_month: 50
    max_submissions: 50
    submission_meta_attributes:
      - name: TextAttribute
        description: Sample
        type: text
      - name: SingleOptionAttribute
        description: Sample
        type: radio
        options: ["A", "B", "C"]
      - name: MultipleChoiceAttribute
        description: Sample
        type: checkbox
        options: ["alpha", "beta", "gamma"]
      - name: TrueFalseField
        description: Sample
        type: boolean
    is_restricted_to_select_one_submission: False
    is_partial_submission_evaluation_enabled: False
  - id: 2
    name: Test Phase
    description: templates/challenge_phase_2_description.html
    leaderboard_public: True
    is_public: True
    is_submission_public: True
    start_date: 2019-01-01 00:00:00
    end_date: 2099-05-24 23:59:59
    test_annotation_file: annotations/test_annotations_testsplit.json
    codename: test
    max_submissions_per_day: 5
    max_submissions_per_month: 50
    max_submissions: 50
    is_restricted_to_select_one_submission: False
    is_partial_submission_evaluation_enabled: False

dataset_splits:
  - id: 1
    name: Train Split
    codename: train_split
  - id: 2
    name: Test Split
    codename: test_split

challenge_phase_splits:
  - challenge_phase_id: 1
    leaderboard_id: 1
    dataset_split_id: 1
    visibility: 1
    leaderboard_decimal_precision: 2
    is_leaderboard_order_descending: True
  - challenge_phase_id: 2
    leaderboard_id: 1
    dataset_split_id: 1
    visibility: 3
    leaderboard_decimal_precision: 2
    is_leaderboard_order_descending: True
  - challenge_phase_id: 2
    leaderboard_id: 1
    dataset_split_id: 2
    visibility: 1
    leaderboard_decimal_precision: 2
    is_leaderboard_order_descending: True
"""

INIT_PY = b'"""Evaluation package."""\n\nfrom .main import evaluate\n'
MAIN_PY = b"""\
import random


def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    split = "train_split" if phase_codename == "dev" else "test_split"
    return {"result": [{split: {"Metric1": random.random(), "Total": 1.0}}]}
"""
REQUIREMENTS = b"numpy>=1.26\n"
HTML = {
    "templates/description.html": "<p>Welcome to the challenge.</p>",
    "templates/evaluation_details.html": "<p>Scored by accuracy.</p>",
    "templates/terms_and_conditions.html": "<p>Be nice.</p>",
    "templates/submission_guidelines.html": "<p>Upload a JSON file.</p>",
    "templates/challenge_phase_1_description.html": "<p>Dev phase.</p>",
    "templates/challenge_phase_2_description.html": "<p>Test phase.</p>",
}
LOGO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


def script_files() -> dict[str, bytes]:
    return {"__init__.py": INIT_PY, "main.py": MAIN_PY, "requirements.txt": REQUIREMENTS}


def starter_config() -> dict[str, Any]:
    return yaml.safe_load(STARTER_CONFIG)


def dump(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)


def starter_files(
    config: str | bytes | Mapping[str, Any] | None = None,
    *,
    script: str = "zip",
    prefix: str = "",
) -> dict[str, bytes | str | Entry]:
    """The bundle's files; `script` is "zip" (evaluation_script.zip) or "folder"."""
    if config is None:
        text: str | bytes = STARTER_CONFIG
    elif isinstance(config, str | bytes):
        text = config
    else:
        text = dump(config)
    files: dict[str, bytes | str | Entry] = {
        "challenge_config.yaml": text,
        "templates/": b"",
        **HTML,
        "logo.jpg": LOGO,
        "annotations/": b"",
        "annotations/test_annotations_devsplit.json": b'{"dev": [1, 2, 3]}',
        "annotations/test_annotations_testsplit.json": b'{"test": [4, 5, 6]}',
    }
    if script == "zip":
        files["evaluation_script.zip"] = zip_bytes(script_files())
    else:
        files["evaluation_script/"] = b""
        files.update({f"evaluation_script/{k}": v for k, v in script_files().items()})
    if prefix:
        files = {prefix + name: content for name, content in files.items()}
    return files


def build(
    config: str | bytes | Mapping[str, Any] | None = None,
    *,
    extra: Mapping[str, bytes | str | Entry] | None = None,
    drop: Iterable[str] = (),
    **kwargs: Any,
) -> bytes:
    files = starter_files(config, **kwargs)
    for name in drop:
        del files[name]
    files.update(extra or {})
    return zip_bytes(files)


def with_config(change: Any) -> bytes:
    """The starter bundle after `change(config)` edits its config dict in place."""
    config = starter_config()
    change(config)
    return build(config)


def patch_entry(data: bytes, name: str, **fields: int) -> bytes:
    """Rewrite header fields (flag_bits, compress_type, file_size) of `name` in place.

    zipfile writes only honest headers; hostile zips are made by editing them after.
    """
    buffer = bytearray(data)
    end = buffer.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack("<2L", buffer[end + 12 : end + 20])
    pos = cd_offset
    wanted = name.encode()
    found = False
    while pos < cd_offset + cd_size:
        name_len, extra_len, comment_len = struct.unpack("<3H", buffer[pos + 28 : pos + 34])
        local = struct.unpack("<L", buffer[pos + 42 : pos + 46])[0]
        if bytes(buffer[pos + 46 : pos + 46 + name_len]) == wanted:
            found = True
            for field, (central_at, local_at, fmt) in {
                "flag_bits": (8, 6, "<H"),
                "compress_type": (10, 8, "<H"),
                "file_size": (24, 22, "<L"),
            }.items():
                if field in fields:
                    struct.pack_into(fmt, buffer, pos + central_at, fields[field])
                    struct.pack_into(fmt, buffer, local + local_at, fields[field])
        pos += 46 + name_len + extra_len + comment_len
    assert found, name
    return bytes(buffer)


def rename_entry(data: bytes, old: str, new: bytes) -> bytes:
    """Replace a member's name bytes (same length) in every header, e.g. to put a NUL in it."""
    assert len(old.encode()) == len(new)
    return data.replace(old.encode(), new)

"""The bundle loader (challenges.bundle): EvalAI-compatible zips load, hostile or broken
ones are refused with every problem located. Pure: no database, nothing on disk."""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import os
import random
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from challenges.bundle import Bundle, BundleError, Limits, Problem, load_bundle
from tests.challenges import bundle_factory as factory
from tests.challenges.bundle_factory import (
    STARTER_CONFIG,
    Entry,
    build,
    patch_entry,
    rename_entry,
    script_files,
    starter_config,
    starter_files,
    symlink,
    with_config,
    zip_bytes,
)

UTC = dt.UTC
MIB = 1024**2
ZIP_SLIP_TARGET = Path(tempfile.gettempdir()) / "evalserver-zip-slip-absolute.txt"


def load(data: bytes, limits: Limits | None = None) -> Bundle:
    return load_bundle(io.BytesIO(data), limits=limits)


def problems_of(data: bytes, limits: Limits | None = None) -> list[Problem]:
    with pytest.raises(BundleError) as excinfo:
        load(data, limits).close()
    return excinfo.value.problems


def find(problems: list[Problem], fragment: str, *, severity: str = "error") -> Problem:
    for problem in problems:
        if problem.severity == severity and fragment.lower() in problem.message.lower():
            return problem
    listed = "\n".join(f"  {p.severity}: {p}" for p in problems)
    raise AssertionError(f"no {severity} containing {fragment!r} in:\n{listed}")


# -- bundles that load -------------------------------------------------------------


def test_it_loads_a_bundle_laid_out_like_evalai_starters():
    with load(build()) as bundle:
        spec = bundle.spec
        assert bundle.warnings == []
    assert spec.title == "Random Number Generator Challenge"
    assert spec.short_description == "Random number generation challenge for each submission"
    assert spec.description == "<p>Welcome to the challenge.</p>"
    assert spec.evaluation_details == "<p>Scored by accuracy.</p>"
    assert spec.terms_and_conditions == "<p>Be nice.</p>"
    assert spec.submission_guidelines == "<p>Upload a JSON file.</p>"
    assert spec.leaderboard_description.startswith("Lorem ipsum")
    assert spec.image == "logo.jpg"
    assert spec.start_date == dt.datetime(2019, 1, 1, tzinfo=UTC)
    assert spec.end_date == dt.datetime(2099, 5, 31, 23, 59, 59, tzinfo=UTC)
    assert (spec.published, spec.remote_evaluation, spec.is_docker_based) == (True, False, False)
    assert (spec.is_registration_open, spec.anonymous_leaderboard) == (True, False)
    assert spec.config_file == "challenge_config.yaml"
    assert spec.unknown_keys == {}
    json.dumps(spec.raw_config)  # stored in a JSON column as it is
    assert spec.raw_config["start_date"] == "2019-01-01T00:00:00"

    [board] = spec.leaderboards
    assert (board.id, board.labels, board.default_order_by) == (
        1,
        ["Metric1", "Metric2", "Metric3", "Total"],
        "Total",
    )
    assert board.schema == {
        "labels": ["Metric1", "Metric2", "Metric3", "Total"],
        "default_order_by": "Total",
    }
    assert [(s.id, s.name, s.codename) for s in spec.dataset_splits] == [
        (1, "Train Split", "train_split"),
        (2, "Test Split", "test_split"),
    ]

    dev, test = spec.phases
    assert (dev.id, dev.name, dev.codename) == (1, "Dev Phase", "dev")
    assert dev.description == "<p>Dev phase.</p>"
    assert dev.start_date == dt.datetime(2019, 1, 19, tzinfo=UTC)
    assert dev.end_date == dt.datetime(2099, 4, 25, 23, 59, 59, tzinfo=UTC)
    assert dev.test_annotation_file == "annotations/test_annotations_devsplit.json"
    assert (dev.leaderboard_public, dev.is_public, dev.is_submission_public) == (False, True, True)
    assert (dev.max_submissions_per_day, dev.max_submissions_per_month, dev.max_submissions) == (
        5,
        50,
        50,
    )
    assert dev.max_concurrent_submissions_allowed == 3
    assert dev.allowed_submission_file_types == [
        ".json", ".zip", ".txt", ".tsv", ".gz", ".csv", ".h5", ".npy", ".npz",
    ]  # fmt: skip
    assert [(a["name"], a["type"], a.get("options")) for a in dev.submission_meta_attributes] == [
        ("TextAttribute", "text", None),
        ("SingleOptionAttribute", "radio", ["A", "B", "C"]),
        ("MultipleChoiceAttribute", "checkbox", ["alpha", "beta", "gamma"]),
        ("TrueFalseField", "boolean", None),
    ]
    assert (dev.submission_type, dev.test_input_file, dev.public_data, dev.resources) == (
        "file",
        None,
        [],
        {},
    )
    assert (test.id, test.codename, test.leaderboard_public) == (2, "test", True)

    assert [
        (ps.challenge_phase_id, ps.leaderboard_id, ps.dataset_split_id, ps.visibility)
        for ps in spec.phase_splits
    ] == [
        (1, 1, 1, 1),
        (2, 1, 1, 3),
        (2, 1, 2, 1),
    ]
    script = spec.evaluation_script
    assert script is not None
    assert script.source == "evaluation_script.zip"
    assert script.files == script_files()
    assert script.requirements == factory.REQUIREMENTS.decode()
    assert len(script.sha256) == 64


def test_it_loads_a_zip_built_the_way_evalai_starters_run_sh_builds_it(tmp_path):
    """run.sh: `zip -r -j evaluation_script.zip evaluation_script/*`, then `zip -r` of the rest."""
    repo = tmp_path / "repo"
    for name, content in starter_files(script="folder").items():
        target = repo / name
        if name.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    (repo / "README.md").write_text("# My challenge\n")
    script = tmp_path / "evaluation_script.zip"
    with zipfile.ZipFile(script, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((repo / "evaluation_script").iterdir()):
            zf.write(path, path.name)  # -j: junk the folder
    bundle_zip = tmp_path / "challenge_config.zip"
    with zipfile.ZipFile(bundle_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(script, "evaluation_script.zip")
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(repo).as_posix()
            if rel.startswith("evaluation_script") or rel == "README.md":
                continue
            zf.write(path, rel)  # directories become "templates/" entries, as zip -r writes them
    with load_bundle(bundle_zip) as bundle:
        assert bundle.spec.evaluation_script.files == script_files()
        assert bundle.warnings == []


def test_it_loads_a_bundle_under_one_top_folder():
    data = zip_bytes(starter_files(prefix="my-challenge/"))
    with load(data) as bundle:
        assert bundle.spec.config_file == "my-challenge/challenge_config.yaml"
        assert bundle.spec.description == "<p>Welcome to the challenge.</p>"
        assert (
            bundle.spec.phases[0].test_annotation_file
            == "annotations/test_annotations_devsplit.json"
        )
        assert (
            bundle.open("annotations/test_annotations_devsplit.json").read()
            == b'{"dev": [1, 2, 3]}'
        )
        assert bundle.warnings == []


def test_it_ignores_macosx_entries():
    files = starter_files(prefix="challenge/")
    files.update(
        {
            "__MACOSX/": b"",
            "__MACOSX/challenge/._challenge_config.yaml": b"\x00\x05\x16\x07",
            "__MACOSX/challenge/templates/._description.html": b"\x00\x05\x16\x07",
            "challenge/._challenge_config.yaml": b"\x00\x05\x16\x07",
            "challenge/.DS_Store": b"\x00\x00\x00\x01Bud1",
            ".DS_Store": b"\x00\x00\x00\x01Bud1",
        }
    )
    with load(zip_bytes(files)) as bundle:
        assert bundle.spec.config_file == "challenge/challenge_config.yaml"
        assert bundle.warnings == []


def test_it_accepts_an_evaluation_script_folder():
    config = starter_config()
    config["evaluation_script"] = "evaluation_script/"
    files = starter_files(config, script="folder")
    files["evaluation_script/__pycache__/main.cpython-311.pyc"] = b"\x00junk"
    files["evaluation_script/settings.yaml"] = (
        "threshold: 0.5\n"  # the script's own YAML: no warning
    )
    with load(zip_bytes(files)) as bundle:
        script = bundle.spec.evaluation_script
        assert script.source == "evaluation_script/"
        assert script.files == {**script_files(), "settings.yaml": b"threshold: 0.5\n"}
        assert bundle.warnings == []


def test_it_accepts_a_script_zip_whose_files_sit_in_one_top_folder():
    nested = zip_bytes({f"evaluation_script/{k}": v for k, v in script_files().items()})
    with load(build(extra={"evaluation_script.zip": nested})) as bundle:
        assert bundle.spec.evaluation_script.files == script_files()


def test_it_uses_the_folder_when_the_config_names_a_missing_zip():
    with load(zip_bytes(starter_files(script="folder"))) as bundle:
        assert bundle.spec.evaluation_script.source == "evaluation_script/"
        warning = find(bundle.warnings, "'evaluation_script/' is used instead", severity="warning")
        assert warning.key == "evaluation_script"


def test_it_uses_the_zip_when_the_config_names_a_missing_folder():
    with load(with_config(lambda c: c.update(evaluation_script="evaluation_script/"))) as bundle:
        assert bundle.spec.evaluation_script.source == "evaluation_script.zip"
        find(bundle.warnings, "'evaluation_script.zip' is used instead", severity="warning")


def test_it_reads_all_phase_split_keys():
    def change(config: dict) -> None:
        config["challenge_phase_splits"][0].update(
            visibility=2,
            leaderboard_decimal_precision=4,
            is_leaderboard_order_descending=False,
            show_execution_time="True",
            show_leaderboard_by_latest_submission=True,
        )

    with load(with_config(change)) as bundle:
        split = bundle.spec.phase_splits[0]
    assert (split.challenge_phase_id, split.leaderboard_id, split.dataset_split_id) == (1, 1, 1)
    assert (split.visibility, split.leaderboard_decimal_precision) == (2, 4)
    assert split.is_leaderboard_order_descending is False
    assert split.show_execution_time is True
    assert split.show_leaderboard_by_latest_submission is True


def test_it_warns_about_yaml_files_deeper_in_the_tree():
    data = build(extra={"github/host_config.yaml": "token: x\n", "docs/notes.yml": "a: 1\n"})
    with load(data) as bundle:
        ignored = {w.file for w in bundle.warnings if "Ignored" in w.message}
    assert ignored == {"github/host_config.yaml", "docs/notes.yml"}


def test_challenge_config_yaml_wins_over_other_yaml_files_beside_it():
    with load(build(extra={"other.yml": "title: not this one\n"})) as bundle:
        assert bundle.spec.title == "Random Number Generator Challenge"
        warning = find(bundle.warnings, "several yaml files", severity="warning")
    assert "other.yml" in warning.message


def test_a_lone_yaml_file_with_another_name_is_the_config():
    files = starter_files()
    files["my_challenge.yml"] = files.pop("challenge_config.yaml")
    with load(zip_bytes(files)) as bundle:
        assert bundle.spec.config_file == "my_challenge.yml"


def test_a_lone_yaml_file_deeper_in_the_tree_is_the_config_with_a_warning():
    files = starter_files(prefix="challenge/")
    files["README.md"] = "# Read me\n"
    with load(zip_bytes(files)) as bundle:
        assert bundle.spec.config_file == "challenge/challenge_config.yaml"
        assert bundle.spec.description == "<p>Welcome to the challenge.</p>"
        find(bundle.warnings, "not at the top of the zip", severity="warning")


def test_it_reads_evaluation_criteria_the_old_name_of_evaluation_details():
    def change(config: dict) -> None:
        config["evaluation_criteria"] = config.pop("evaluation_details")

    with load(with_config(change)) as bundle:
        assert bundle.spec.evaluation_details == "<p>Scored by accuracy.</p>"
        assert bundle.spec.unknown_keys == {}
        assert bundle.warnings == []


def test_a_repeated_key_is_a_warning_and_the_last_value_wins():
    text = STARTER_CONFIG.replace("published: True", "published: True\npublished: False")
    with load(build(text)) as bundle:
        assert bundle.spec.published is False
        warning = find(bundle.warnings, "appears twice", severity="warning")
    assert (warning.key, warning.line) == ("published", 16)


def test_it_keeps_unknown_keys_and_warns_about_them():
    def change(config: dict) -> None:
        config["sponsor_logo_color"] = "blue"
        config["forum_url"] = "https://forum.example.org"
        config["challenge_phases"][0]["is_active"] = True
        config["challenge_phases"][0]["codenme"] = "typo"
        config["dataset_splits"][0]["size"] = 100
        config["leaderboard"][0]["title"] = "Main"
        config["challenge_phase_splits"][0]["show_scores_on_leaderboard"] = True

    with load(with_config(change)) as bundle:
        spec, problems = bundle.spec, bundle.warnings
    assert spec.unknown_keys == {
        "sponsor_logo_color": "blue",
        "forum_url": "https://forum.example.org",
    }
    assert spec.raw_config["challenge_phases"][0]["codenme"] == "typo"
    keys = {p.key for p in problems}
    assert {
        "sponsor_logo_color",
        "forum_url",
        "challenge_phases[0].is_active",
        "challenge_phases[0].codenme",
        "dataset_splits[0].size",
        "leaderboard[0].title",
        "challenge_phase_splits[0].show_scores_on_leaderboard",
    } <= keys
    assert "Did you mean 'codename'?" in find(problems, "'codenme'", severity="warning").message
    assert "EvalAI setting" in find(problems, "'forum_url'", severity="warning").message
    assert all(p.line is not None for p in problems)


def test_it_accepts_evalai_value_spellings():
    def change(config: dict) -> None:
        config["published"] = "False"
        config["start_date"] = "2019-01-01"
        config["end_date"] = dt.date(2099, 5, 31)
        phase = config["challenge_phases"][0]
        phase["is_public"] = "true"
        phase["start_date"] = "2019-01-19T10:00:00+02:00"
        phase["end_date"] = "2099-04-25 23:59:59"
        phase["max_submissions_per_day"] = "10"
        phase["allowed_submission_file_types"] = ".JSON, csv,.Zip"
        phase["codename"] = 2019  # EvalAI's CharField takes numbers

    with load(with_config(change)) as bundle:
        spec = bundle.spec
    phase = spec.phases[0]
    assert spec.published is False
    assert spec.start_date == dt.datetime(2019, 1, 1, tzinfo=UTC)
    assert spec.end_date == dt.datetime(2099, 5, 31, tzinfo=UTC)
    assert phase.is_public is True
    assert phase.start_date == dt.datetime(2019, 1, 19, 8, tzinfo=UTC)
    assert phase.end_date == dt.datetime(2099, 4, 25, 23, 59, 59, tzinfo=UTC)
    assert phase.max_submissions_per_day == 10
    assert phase.allowed_submission_file_types == [".json", ".csv", ".zip"]
    assert phase.codename == "2019"


def test_it_applies_evalai_defaults():
    def change(config: dict) -> None:
        phase = config["challenge_phases"][1]
        for key in (
            "max_submissions_per_day",
            "max_submissions_per_month",
            "is_public",
            "leaderboard_public",
        ):
            phase.pop(key)
        config["challenge_phases"][0].pop("max_submissions_per_month")
        config["challenge_phases"][0]["max_submissions_per_day"] = 2
        config["challenge_phase_splits"][0] = {
            "challenge_phase_id": 1,
            "leaderboard_id": 1,
            "dataset_split_id": 1,
        }

    with load(with_config(change)) as bundle:
        dev, test = bundle.spec.phases
        split = bundle.spec.phase_splits[0]
    # An absent monthly quota takes the total quota, as in EvalAI.
    assert (dev.max_submissions_per_month, dev.max_submissions) == (50, 50)
    # Never more running at once than allowed per day (EvalAI's ChallengePhase.save()).
    assert dev.max_concurrent_submissions_allowed == 2
    assert (test.max_submissions_per_day, test.max_submissions_per_month) == (100000, 50)
    assert (test.is_public, test.leaderboard_public) == (False, False)
    assert (
        split.visibility,
        split.leaderboard_decimal_precision,
        split.is_leaderboard_order_descending,
    ) == (3, 2, True)


def test_it_reads_the_extension_keys():
    def change(config: dict) -> None:
        config["challenge_phases"][1].update(
            submission_type="code",
            test_input_file="data/test_features.csv",
            public_data=["data/train.csv", "data/public"],
            resources={"cpus": 2, "memory_mb": 4096, "time_limit_s": 600},
            max_final_submissions=2,
            private_splits_reveal="at_end",
            max_submission_size_bytes=10 * MIB,
        )

    config = starter_config()
    change(config)
    data = build(
        config,
        extra={
            "data/test_features.csv": "x\n1\n",
            "data/train.csv": "x,y\n1,2\n",
            "data/public/a.csv": "a\n",
            "data/public/b.csv": "b\n",
        },
    )
    with load(data) as bundle:
        phase = bundle.spec.phases[1]
    assert phase.submission_type == "code"
    assert phase.test_input_file == "data/test_features.csv"
    assert phase.public_data == ["data/train.csv", "data/public/a.csv", "data/public/b.csv"]
    assert phase.resources == {"cpus": 2, "memory_mb": 4096, "time_limit_s": 600}
    assert (phase.max_final_submissions, phase.private_splits_reveal) == (2, "at_end")
    assert phase.max_submission_size_bytes == 10 * MIB


def test_it_accepts_a_config_with_a_bom_or_in_utf16():
    for encoded in (b"\xef\xbb\xbf" + STARTER_CONFIG.encode(), STARTER_CONFIG.encode("utf-16")):
        with load(build(encoded)) as bundle:
            assert bundle.spec.title == "Random Number Generator Challenge"


def test_it_reads_windows_1252_html_with_a_warning():
    data = build(extra={"templates/description.html": "<p>Caf\xe9 cr\xe8me</p>".encode("cp1252")})
    with load(data) as bundle:
        assert bundle.spec.description == "<p>Caf\xe9 cr\xe8me</p>"
        warning = find(bundle.warnings, "not UTF-8", severity="warning")
    assert (warning.file, warning.key) == ("templates/description.html", "description")


def test_a_missing_logo_or_page_is_a_warning():
    data = build(
        drop=[
            "logo.jpg",
            "templates/terms_and_conditions.html",
            "templates/challenge_phase_2_description.html",
        ]
    )
    with load(data) as bundle:
        assert bundle.spec.image is None
        assert bundle.spec.terms_and_conditions == ""
        assert {w.key for w in bundle.warnings} == {
            "image",
            "terms_and_conditions",
            "challenge_phases[1].description",
        }


def test_it_warns_when_init_does_not_expose_evaluate():
    nested = zip_bytes({"__init__.py": b"import os\n", "main.py": factory.MAIN_PY})
    with load(build(extra={"evaluation_script.zip": nested})) as bundle:
        warning = find(bundle.warnings, "neither defines nor imports evaluate", severity="warning")
    assert warning.file == "evaluation_script.zip/__init__.py"


@pytest.mark.parametrize(
    "init",
    [
        b"from .main import evaluate\n",
        b"from .main import *\n",
        b"def evaluate(a, b, c, **kw):\n    return {}\n",
        b"try:\n    from .main import score as evaluate\nexcept ImportError:\n    raise\n",
        b"from . import main\nevaluate = main.evaluate\n",
    ],
    ids=["import", "star", "def", "import-as-in-try", "assignment"],
)
def test_it_sees_evaluate_however_init_exposes_it(init):
    nested = zip_bytes({"__init__.py": init, "main.py": factory.MAIN_PY})
    with load(build(extra={"evaluation_script.zip": nested})) as bundle:
        assert bundle.warnings == []


# -- bundles that are refused ------------------------------------------------------


@dataclass
class Case:
    id: str
    make: Callable[[], bytes]
    fragment: str
    key: str | None = None
    file: str | None = None
    limits: Limits | None = None
    line: int | None = None
    column: int | None = None

    def param(self) -> Any:
        return pytest.param(self, id=self.id)


def _edit(change: Callable[[dict], Any]) -> Callable[[], bytes]:
    return lambda: with_config(change)


def _phase(index: int, **values: Any) -> Callable[[], bytes]:
    return _edit(lambda c: c["challenge_phases"][index].update(values))


def _split(index: int, **values: Any) -> Callable[[], bytes]:
    return _edit(lambda c: c["challenge_phase_splits"][index].update(values))


def _script(files: dict[str, bytes | Entry]) -> Callable[[], bytes]:
    return lambda: build(extra={"evaluation_script.zip": zip_bytes(files)})


@functools.cache
def _ten_thousand_and_one_entries() -> bytes:
    return zip_bytes(
        {f"data/{i:05}.txt": b"" for i in range(10_001)}, compression=zipfile.ZIP_STORED
    )


def _duplicate_entry() -> bytes:
    buffer = io.BytesIO(build())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(buffer, "a") as zf:
            zf.writestr("templates/description.html", "<p>Second copy</p>")
    return buffer.getvalue()


def _lying_config_header() -> bytes:
    # A config that expands to 2 MiB while its header claims 3 KiB: the read stops at
    # the claimed size and the checksum gives the lie away.
    data = build(STARTER_CONFIG + "#" + " " * (2 * MIB) + "\n")
    return patch_entry(data, "challenge_config.yaml", file_size=3000)


_BILLION_LAUGHS = "lol: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)
)
_SYNTAX_ERROR = STARTER_CONFIG.replace(
    "short_description: Random number generation", "short_description: Random: number generation"
)

HOSTILE = [
    Case(
        "zip-slip",
        lambda: build(extra={"../evil.txt": "pwned"}),
        "'..' component",
        file="../evil.txt",
    ),
    Case(
        "zip-slip-deep",
        lambda: build(extra={"templates/../../evil.txt": "pwned"}),
        "'..' component",
    ),
    Case(
        "zip-slip-backslash",
        lambda: build(extra={"templates\\..\\..\\evil.txt": "pwned"}),
        "'..' component",
    ),
    Case("absolute-path", lambda: build(extra={str(ZIP_SLIP_TARGET): "pwned"}), "absolute path"),
    Case(
        "windows-drive-path",
        lambda: build(extra={"C:\\Windows\\evil.txt": "pwned"}),
        "absolute Windows path",
    ),
    Case(
        "windows-unc-path",
        lambda: build(extra={"\\\\server\\share\\evil.txt": "pwned"}),
        "absolute path",
    ),
    Case(
        "nul-in-name",
        lambda: rename_entry(
            build(extra={"evilXname.txt": "x"}), "evilXname.txt", b"evil\x00name.txt"
        ),
        "NUL character",
    ),
    Case(
        "symlink",
        lambda: build(extra={"templates/passwd.html": symlink("/etc/passwd")}),
        "symbolic link",
    ),
    Case(
        "too-many-entries",
        lambda: build(extra={f"data/{i}.txt": "" for i in range(20)}),
        "more than 20 entries",
        limits=Limits(max_entries=20),
    ),
    Case("10001-entries", _ten_thousand_and_one_entries, "more than 10,000 entries"),
    Case(
        "total-size-cap",
        lambda: build(extra={"data/big.bin": random.Random(1).randbytes(100_000)}),
        "expands to",
        limits=Limits(max_total_uncompressed_bytes=64_000),
    ),
    Case(
        "member-size-cap",
        lambda: build(extra={"data/big.bin": random.Random(2).randbytes(60_000)}),
        "limit for one file",
        file="data/big.bin",
        limits=Limits(max_member_bytes=50_000),
    ),
    Case(
        "ratio-bomb",
        lambda: build(extra={"data/zeros.bin": bytes(2 * MIB)}),
        "zip bomb",
        file="data/zeros.bin",
    ),
    Case(
        "nested-zip-bomb",
        _script({**script_files(), "weights.bin": bytes(4 * MIB)}),
        "'weights.bin' expands",
        key="evaluation_script",
        file="evaluation_script.zip",
    ),
    Case(
        "nested-zip-slip",
        _script({**script_files(), "../../evil.py": b"print('pwned')"}),
        "'..' component",
        file="evaluation_script.zip",
    ),
    Case(
        "nested-script-too-big",
        _script(
            {
                **script_files(),
                "a.bin": random.Random(3).randbytes(60_000),
                "b.bin": random.Random(4).randbytes(60_000),
            }
        ),
        "expands to",
        file="evaluation_script.zip",
        limits=Limits(max_script_bytes=100_000),
    ),
    Case("lying-header", _lying_config_header, "corrupt", file="challenge_config.yaml"),
    Case(
        "encrypted-entry",
        lambda: patch_entry(build(), "templates/description.html", flag_bits=0x1),
        "encrypted",
        file="templates/description.html",
    ),
    Case(
        "unknown-compression",
        lambda: patch_entry(build(), "logo.jpg", compress_type=99),
        "compression method 99",
    ),
    Case("duplicate-entry", _duplicate_entry, "appears twice"),
    Case("not-a-zip", lambda: b"this is not a zip file at all", "not a valid zip file"),
    Case("truncated-zip", lambda: build()[:-200], "not a valid zip file"),
    Case("empty-zip", lambda: zip_bytes({}), "The zip is empty"),
    Case(
        "yaml-alias-bomb",
        lambda: build(STARTER_CONFIG + _BILLION_LAUGHS),
        "alias bomb",
        file="challenge_config.yaml",
    ),
    Case(
        "yaml-recursive-alias",
        lambda: build("title: &a [*a]\n"),
        "refers to itself",
        line=1,
        column=8,
    ),
    Case(
        "yaml-deep-flow",
        lambda: build("title: " + "[" * 500 + "]" * 500),
        "nested more than 64 levels",
    ),
    Case(
        "yaml-absurdly-deep-flow",
        lambda: build("title: " + "[" * 50_000 + "]" * 50_000),
        "nested too deeply",
    ),
    Case(
        "yaml-syntax-error",
        lambda: build(_SYNTAX_ERROR),
        "YAML syntax error: mapping values are not allowed",
        file="challenge_config.yaml",
        line=3,
        column=26,
    ),
    Case(
        "yaml-two-documents",
        lambda: build(STARTER_CONFIG + "---\ntitle: x\n"),
        "more than one YAML document",
    ),
    Case(
        "yaml-impossible-date",
        lambda: build(STARTER_CONFIG.replace("2099-05-31 23:59:59", "2099-02-30 23:59:59")),
        "not a valid date",
        line=14,
    ),
    Case(
        "yaml-not-utf8",
        lambda: build(STARTER_CONFIG.replace("for each submission", "caf\xe9").encode("latin-1")),
        "not UTF-8: byte 0xE9",
        line=3,
    ),
    Case("yaml-control-character", lambda: build("title: a\x07b\n"), "not allowed in YAML", line=1),
    Case(
        "config-too-big",
        lambda: build(),
        "the limit is 1,000",
        file="challenge_config.yaml",
        limits=Limits(max_config_bytes=1000),
    ),
    Case("config-is-a-list", lambda: build("- title\n- end_date\n"), "must be a mapping of keys"),
    Case("config-is-empty", lambda: build(""), "config file is empty"),
    Case(
        "two-yaml-no-challenge-config",
        lambda: zip_bytes(
            {
                **{k: v for k, v in starter_files().items() if k != "challenge_config.yaml"},
                "first.yaml": STARTER_CONFIG,
                "second.yml": "a: 1\n",
            }
        ),
        "first.yaml, second.yml",
    ),
    Case(
        "no-yaml",
        lambda: build(drop=["challenge_config.yaml"]),
        "put challenge_config.yaml at the root",
    ),
    Case("missing-title", _edit(lambda c: c.pop("title")), "is required", key="title"),
    Case(
        "title-is-a-list",
        _edit(lambda c: c.update(title=["a", "b"])),
        "must be text, not a list",
        key="title",
    ),
    Case(
        "missing-evaluation-script-key",
        _edit(lambda c: c.pop("evaluation_script")),
        "is required",
        key="evaluation_script",
    ),
    Case("missing-end-date", _edit(lambda c: c.pop("end_date")), "is required", key="end_date"),
    Case(
        "start-after-end",
        _edit(lambda c: c.update(start_date="2100-01-01 00:00:00")),
        "must be before end_date",
        key="start_date",
    ),
    Case(
        "bad-date-string",
        _edit(lambda c: c.update(end_date="next year")),
        "is not a date: 'next year'",
        key="end_date",
    ),
    Case(
        "phase-start-after-end",
        _phase(0, start_date="2099-12-01 00:00:00"),
        "must be before end_date",
        key="challenge_phases[0].start_date",
    ),
    Case(
        "duplicate-phase-codename",
        _phase(1, codename="dev"),
        "already used by challenge_phases[0]",
        key="challenge_phases[1].codename",
    ),
    Case("duplicate-phase-id", _phase(1, id=1), "already used", key="challenge_phases[1].id"),
    Case(
        "duplicate-split-codename",
        _edit(lambda c: c["dataset_splits"][1].update(codename="train_split")),
        "must be unique",
        key="dataset_splits[1].codename",
    ),
    Case(
        "phase-split-missing-phase",
        _split(0, challenge_phase_id=9),
        "refers to id 9",
        key="challenge_phase_splits[0].challenge_phase_id",
    ),
    Case(
        "phase-split-missing-leaderboard",
        _split(1, leaderboard_id=7),
        "leaderboard has no item with that id",
        key="challenge_phase_splits[1].leaderboard_id",
    ),
    Case(
        "phase-split-missing-dataset-split",
        _split(2, dataset_split_id=5),
        "dataset_splits has no item",
        key="challenge_phase_splits[2].dataset_split_id",
    ),
    Case(
        "duplicate-phase-split",
        _split(2, dataset_split_id=1),
        "repeats phase 2 with dataset split 1",
        key="challenge_phase_splits[2]",
    ),
    Case(
        "bad-visibility",
        _split(0, visibility=4),
        "must be 1 (host only)",
        key="challenge_phase_splits[0].visibility",
    ),
    Case(
        "default-order-by-not-a-label",
        _edit(lambda c: c["leaderboard"][0]["schema"].update(default_order_by="Score")),
        "'Score', which is not one of the labels",
        key="leaderboard[0].schema.default_order_by",
    ),
    Case(
        "empty-labels",
        _edit(lambda c: c["leaderboard"][0]["schema"].update(labels=[])),
        "non-empty list",
        key="leaderboard[0].schema.labels",
    ),
    Case(
        "missing-leaderboard",
        _edit(lambda c: c.pop("leaderboard")),
        "is required",
        key="leaderboard",
    ),
    Case(
        "radio-without-options",
        _edit(lambda c: c["challenge_phases"][0]["submission_meta_attributes"][1].pop("options")),
        "needs a non-empty list of options",
        key="challenge_phases[0].submission_meta_attributes[1]",
    ),
    Case(
        "unknown-meta-attribute-type",
        _edit(
            lambda c: c["challenge_phases"][0]["submission_meta_attributes"][0].update(
                type="dropdown"
            )
        ),
        "must be one of text, radio, checkbox, boolean, not 'dropdown'",
        key="challenge_phases[0].submission_meta_attributes[0].type",
    ),
    Case(
        "negative-quota",
        _phase(0, max_submissions_per_day=-1),
        "at least 0, not -1",
        key="challenge_phases[0].max_submissions_per_day",
    ),
    Case(
        "quota-not-a-number",
        _phase(1, max_submissions="lots"),
        "whole number",
        key="challenge_phases[1].max_submissions",
    ),
    Case(
        "bad-boolean",
        _edit(lambda c: c.update(published="maybe")),
        "must be True or False",
        key="published",
    ),
    Case(
        "missing-annotation-file",
        lambda: build(drop=["annotations/test_annotations_devsplit.json"]),
        "not in the zip",
        key="challenge_phases[0].test_annotation_file",
    ),
    Case(
        "missing-description-file",
        lambda: build(drop=["templates/description.html"]),
        "'templates/description.html', which is not in the zip",
        key="description",
    ),
    Case(
        "path-outside-the-bundle",
        _edit(lambda c: c.update(description="../../etc/passwd.html")),
        "must be a path inside the bundle",
        key="description",
    ),
    Case(
        "missing-evaluation-script-zip",
        lambda: build(drop=["evaluation_script.zip"]),
        "'evaluation_script.zip', which is not in the zip",
        key="evaluation_script",
    ),
    Case(
        "script-without-init",
        _script({"main.py": factory.MAIN_PY}),
        "no __init__.py",
        key="evaluation_script",
        file="evaluation_script.zip",
    ),
    Case(
        "script-init-syntax-error",
        _script(
            {
                "__init__.py": b"from .main import evaluate\ndef broken(:\n",
                "main.py": factory.MAIN_PY,
            }
        ),
        "not valid Python",
        file="evaluation_script.zip/__init__.py",
        line=2,
    ),
    Case(
        "script-not-a-zip",
        lambda: build(extra={"evaluation_script.zip": b"print('hi')\n"}),
        "is not a valid zip",
    ),
    Case(
        "challenge-phases-as-a-mapping",
        _edit(lambda c: c.update(challenge_phases=c["challenge_phases"][0])),
        "must be a list (start each item with '- '), not a mapping",
        key="challenge_phases",
    ),
    Case(
        "tags-as-text", _edit(lambda c: c.update(tags="vision, nlp")), "must be a list", key="tags"
    ),
    Case(
        "phase-as-text",
        _edit(lambda c: c["challenge_phases"].append("Final phase")),
        "must be a mapping of keys",
        key="challenge_phases[2]",
    ),
    Case(
        "code-phase-without-test-input",
        _phase(0, submission_type="code"),
        "required for a code phase",
        key="challenge_phases[0].test_input_file",
    ),
    Case(
        "code-phase-input-missing-from-zip",
        _phase(0, submission_type="code", test_input_file="data/hidden.csv"),
        "not in the zip",
        key="challenge_phases[0].test_input_file",
    ),
    Case(
        "bad-submission-type",
        _phase(0, submission_type="docker"),
        "'file' or 'code'",
        key="challenge_phases[0].submission_type",
    ),
    Case(
        "bad-resources",
        _phase(0, resources={"cpus": -1, "memory_mb": "lots"}),
        "positive number",
        key="challenge_phases[0].resources.cpus",
    ),
    Case(
        "resources-not-a-mapping",
        _phase(0, resources=[1, 2]),
        "must be a mapping",
        key="challenge_phases[0].resources",
    ),
    Case(
        "public-data-missing",
        _phase(0, public_data=["data/train.csv"]),
        "not in the zip",
        key="challenge_phases[0].public_data[0]",
    ),
    Case(
        "bad-private-splits-reveal",
        _phase(0, private_splits_reveal="tomorrow"),
        "can only be 'at_end'",
        key="challenge_phases[0].private_splits_reveal",
    ),
    Case(
        "zero-final-submissions",
        _phase(0, max_final_submissions=0),
        "positive whole number",
        key="challenge_phases[0].max_final_submissions",
    ),
]


@pytest.mark.parametrize("case", [c.param() for c in HOSTILE])
def test_it_refuses_a_malformed_or_hostile_bundle(case: Case):
    problem = find(problems_of(case.make(), case.limits), case.fragment)
    if case.key is not None:
        assert problem.key == case.key
    if case.file is not None:
        assert problem.file == case.file
    if case.line is not None:
        assert problem.line == case.line
    if case.column is not None:
        assert problem.column == case.column


def test_it_has_at_least_35_refusal_cases():
    assert len(HOSTILE) >= 35


def test_it_rejects_zip_with_parent_paths():
    problem = find(
        problems_of(build(extra={"templates/../../../etc/cron.d/evil": "* * * * * root sh"})),
        "'..'",
    )
    assert "templates/../../../etc/cron.d/evil" in problem.message


def test_it_refuses_a_real_zip_of_more_than_10000_entries_before_listing_them(monkeypatch):
    data = _ten_thousand_and_one_entries()
    built: list[int] = []
    monkeypatch.setattr(zipfile, "ZipInfo", _counting(zipfile.ZipInfo, built))
    problems = problems_of(data)
    find(problems, "more than 10,000 entries")
    assert built == []  # refused from the end record, before zipfile read the table of contents


def _counting(cls: type, built: list) -> type:
    class Counting(cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any):
            built.append(1)
            super().__init__(*args, **kwargs)

    return Counting


def test_semantic_problems_carry_line_and_column():
    text = STARTER_CONFIG.replace("codename: test", "codename: dev")
    problem = find(problems_of(build(text)), "already used")
    lines = text.splitlines()
    second = [i for i, line in enumerate(lines) if line.strip() == "codename: dev"][1]
    assert (problem.file, problem.key) == ("challenge_config.yaml", "challenge_phases[1].codename")
    assert (problem.line, problem.column) == (second + 1, lines[second].index("codename") + 1)
    assert str(problem).startswith(
        f"challenge_config.yaml:{second + 1}:5: challenge_phases[1].codename:"
    )


def test_a_missing_key_is_located_at_its_parent():
    config = starter_config()
    del config["challenge_phases"][1]["codename"]
    text = factory.dump(config)
    problem = find(problems_of(build(text)), "is required")
    assert problem.key == "challenge_phases[1].codename"
    lines = text.splitlines()
    phase_two = [i for i, line in enumerate(lines) if line.startswith("- id: 2")][0]
    assert problem.line == phase_two + 1


def test_it_reports_every_problem_at_once():
    def change(config: dict) -> None:
        config.pop("title")
        config["end_date"] = "soon"
        config["challenge_phases"][1]["codename"] = "dev"
        config["challenge_phases"][0]["max_submissions"] = -5
        config["challenge_phase_splits"][0]["visibility"] = 9
        config["leaderboard"][0]["schema"]["default_order_by"] = "Nope"
        config["challenge_phases"][0]["submission_meta_attributes"][2]["type"] = "select"

    config = starter_config()
    change(config)
    data = build(
        config, drop=["evaluation_script.zip", "annotations/test_annotations_testsplit.json"]
    )
    with pytest.raises(BundleError) as excinfo:
        load(data)
    keys = {p.key for p in excinfo.value.errors}
    assert keys >= {
        "title",
        "end_date",
        "challenge_phases[1].codename",
        "challenge_phases[0].max_submissions",
        "challenge_phase_splits[0].visibility",
        "leaderboard[0].schema.default_order_by",
        "challenge_phases[0].submission_meta_attributes[2].type",
        "challenge_phases[1].test_annotation_file",
        "evaluation_script",
    }


def test_refusal_closes_the_zip_it_opened(tmp_path):
    path = tmp_path / "bad.zip"
    path.write_bytes(build(drop=["evaluation_script.zip"]))
    fds = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    with pytest.raises(BundleError):
        load_bundle(path)
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds


# The absurdly deep case takes the pure-Python parser (2 s) down the same path as yaml-deep-flow.
@pytest.mark.parametrize("case", [c.param() for c in HOSTILE if c.id != "yaml-absurdly-deep-flow"])
def test_it_writes_nothing_for_a_hostile_bundle(case: Case, tmp_path, monkeypatch):
    jail = tmp_path / "jail"
    sandbox = jail / "cwd"
    sandbox.mkdir(parents=True)
    monkeypatch.chdir(sandbox)
    monkeypatch.setenv("TMPDIR", str(sandbox))
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))
    data = case.make()
    with pytest.raises(BundleError):
        load(data, case.limits)
    assert list(sandbox.iterdir()) == []
    assert [p.name for p in jail.iterdir()] == ["cwd"]  # "../evil.txt" would land here
    assert not any(tmp_path.rglob("evil*"))
    assert not ZIP_SLIP_TARGET.exists()
    assert not Path("/etc/cron.d/evil").exists()


# -- Bundle.open and the script hash -----------------------------------------------


def test_open_streams_a_member_from_the_still_open_zip():
    annotations = random.Random(4).randbytes(3 * MIB)
    data = build(extra={"annotations/test_annotations_devsplit.json": annotations})
    with load(data) as bundle:
        assert bundle.size("annotations/test_annotations_devsplit.json") == len(annotations)
        assert bundle.exists("./annotations//test_annotations_devsplit.json")
        with bundle.open("annotations\\test_annotations_devsplit.json") as stream:
            chunks = iter(lambda: stream.read(64 * 1024), b"")
            assert b"".join(chunks) == annotations


def test_open_paths_are_relative_to_the_config_folder():
    with load(zip_bytes(starter_files(prefix="top/"))) as bundle:
        assert bundle.open("logo.jpg").read() == factory.LOGO
        assert not bundle.exists("top/logo.jpg")


def test_open_refuses_a_member_over_the_cap():
    with load(build()) as bundle, pytest.raises(BundleError, match="over the 10-byte limit"):
        bundle.open("annotations/test_annotations_devsplit.json", max_bytes=10)


def test_open_fails_on_a_member_whose_header_lies():
    data = build(extra={"annotations/test_annotations_devsplit.json": bytes(100_000)})
    data = patch_entry(data, "annotations/test_annotations_devsplit.json", file_size=1000)
    with load(data) as bundle:
        assert bundle.size("annotations/test_annotations_devsplit.json") == 1000
        with (
            pytest.raises(BundleError, match="corrupt"),
            bundle.open("annotations/test_annotations_devsplit.json") as s,
        ):
            s.read()


def test_open_refuses_paths_outside_the_bundle_and_missing_files():
    with load(build()) as bundle:
        with pytest.raises(ValueError):
            bundle.open("../challenge_config.yaml")
        with pytest.raises(FileNotFoundError):
            bundle.open("annotations/nope.json")
    with pytest.raises(ValueError, match="closed"):
        bundle.open("logo.jpg")


def test_it_accepts_a_path_and_leaves_a_passed_file_open(tmp_path):
    path = tmp_path / "bundle.zip"
    path.write_bytes(build())
    with load_bundle(str(path)) as bundle:
        assert bundle.spec.title
    with path.open("rb") as fh:
        bundle = load_bundle(fh)
        bundle.close()
        assert not fh.closed


def test_the_script_hash_does_not_depend_on_how_it_was_zipped():
    files = script_files()
    variants = [
        zip_bytes(files),
        zip_bytes(files, order=list(reversed(files)), date_time=(2024, 6, 30, 12, 0, 0)),
        zip_bytes(files, compression=zipfile.ZIP_STORED),
        zip_bytes({f"evaluation_script/{k}": v for k, v in files.items()}),
        zip_bytes(
            {
                **files,
                "__pycache__/main.cpython-311.pyc": b"\x00",
                ".DS_Store": b"\x00",
                "__MACOSX/._main.py": b"\x00",
            }
        ),
    ]
    hashes = set()
    for nested in variants:
        with load(build(extra={"evaluation_script.zip": nested})) as bundle:
            hashes.add(bundle.spec.evaluation_script.sha256)
    config = starter_config()
    config["evaluation_script"] = "evaluation_script/"
    with load(zip_bytes(starter_files(config, script="folder"))) as bundle:
        hashes.add(bundle.spec.evaluation_script.sha256)
    assert len(hashes) == 1
    with load(
        build(
            extra={
                "evaluation_script.zip": zip_bytes({**files, "main.py": files["main.py"] + b"\n"})
            }
        )
    ) as bundle:
        assert bundle.spec.evaluation_script.sha256 not in hashes


def test_raw_config_is_json_safe():
    def change(config: dict) -> None:
        config["extra_dates"] = {"when": dt.date(2020, 1, 2), 3: float("nan")}

    with load(with_config(change)) as bundle:
        raw = bundle.spec.raw_config
    assert raw["extra_dates"] == {"when": "2020-01-02", "3": "nan"}
    json.dumps(raw, allow_nan=False)


def test_yaml_anchors_and_merge_keys_load():
    text = STARTER_CONFIG.replace(
        "  - id: 2\n    name: Test Phase\n", "  - <<: *dev\n    id: 2\n    name: Test Phase\n"
    ).replace("  - id: 1\n    name: Dev Phase\n", "  - &dev\n    id: 1\n    name: Dev Phase\n")
    assert yaml.safe_load(text)["challenge_phases"][1]["submission_meta_attributes"]
    with load(build(text)) as bundle:
        assert len(bundle.spec.phases[1].submission_meta_attributes) == 4

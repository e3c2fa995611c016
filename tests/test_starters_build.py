"""The example challenge bundles build reproducibly and their evaluation scripts behave.

Plain pytest, no database: the bundles are built into a temporary folder, their nested
evaluation_script.zip is extracted and imported the way a worker would, and evaluate() is
called on the sample submissions and on hand-made ones whose scores are known.
"""

import importlib.util
import io
import math
import sys
import warnings
import zipfile

import pandas as pd
import pytest
import yaml

from starters.build import STARTERS, build_starters, sample_submissions, starter_phases

HTML_TEMPLATES = [
    "templates/description.html",
    "templates/evaluation_details.html",
    "templates/terms_and_conditions.html",
    "templates/submission_guidelines.html",
    "templates/challenge_phase_1_description.html",
    "templates/challenge_phase_2_description.html",
]
PHASES = [(name, phase) for name in STARTERS for phase in starter_phases(name)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("starters")
    return out_dir, build_starters(out_dir)


@pytest.fixture(scope="module")
def bundles(built, tmp_path_factory):
    """Starter -> (folder with the extracted bundle, config, imported evaluation module)."""
    out_dir, _ = built
    loaded = {}
    for name in STARTERS:
        folder = tmp_path_factory.mktemp(name)
        with zipfile.ZipFile(out_dir / f"{name}.zip") as bundle:
            bundle.extractall(folder)
        config = yaml.safe_load((folder / "challenge_config.yaml").read_text())
        package = folder / "evaluation_script_package"
        with zipfile.ZipFile(folder / config["evaluation_script"]) as script:
            script.extractall(package)
        loaded[name] = (folder, config, _import_package(f"_starter_eval_{name}", package))
    return loaded


def _import_package(module_name, folder):
    spec = importlib.util.spec_from_file_location(
        module_name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # the package's relative import needs it registered
    spec.loader.exec_module(module)
    return module


def _phase(config, codename):
    return next(p for p in config["challenge_phases"] if p["codename"] == codename)


def _predictions_of(model_path, features_path, prediction_range):
    """A code phase's sample is a model: its checked predictions, as the worker makes them
    (in-process here; the sandbox has its own tests)."""
    import cloudpickle

    from workers.harness.evalserver_predict import (
        read_features,
        validate_predictions,
        write_predictions,
    )

    features = read_features(str(features_path))
    with open(model_path, "rb") as fh:
        predict = cloudpickle.load(fh)
    checked = validate_predictions(
        predict(features), ids=features.index, prediction_range=tuple(prediction_range)
    )
    target = model_path.with_suffix(".predictions.csv")
    write_predictions(checked, str(target))
    return target


def _evaluate(bundles, name, phase, submission):
    folder, config, module = bundles[name]
    spec = _phase(config, phase)
    if spec.get("submission_type") == "code":
        submission = _predictions_of(
            submission, folder / spec["test_input_file"], spec["prediction_range"]
        )
    annotations = folder / _phase(config, phase)["test_annotation_file"]
    metadata = {"id": 1, "status": "running", "participant_team_name": "Test Team"}
    return module.evaluate(str(annotations), str(submission), phase, submission_metadata=metadata)


def _annotations(bundles, name, phase):
    folder, config, _ = bundles[name]
    return pd.read_csv(folder / _phase(config, phase)["test_annotation_file"], dtype={"id": str})


def _scores(output):
    return {split: scores for entry in output["result"] for split, scores in entry.items()}


def test_building_twice_gives_byte_identical_zips_and_samples(built, tmp_path):
    out_dir, first = built
    second = build_starters(tmp_path)
    assert [p.name for p in first] == [p.name for p in second] == [f"{n}.zip" for n in STARTERS]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    for name, phases in sample_submissions(out_dir).items():
        for phase, path in phases.items():
            assert path.read_bytes() == sample_submissions(tmp_path)[name][phase].read_bytes()


@pytest.mark.parametrize("name", STARTERS)
def test_zip_has_evalai_layout(built, name):
    out_dir, _ = built
    with zipfile.ZipFile(out_dir / f"{name}.zip") as bundle:
        names = set(bundle.namelist())
        config = yaml.safe_load(bundle.read("challenge_config.yaml"))
        nested = zipfile.ZipFile(io.BytesIO(bundle.read("evaluation_script.zip")))
        logo = bundle.read("logo.png")
    assert {"challenge_config.yaml", "logo.png", "evaluation_script.zip", *HTML_TEMPLATES} <= names
    assert not any(n.endswith(".py") or "__pycache__" in n for n in names)
    assert logo.startswith(b"\x89PNG\r\n\x1a\n")
    assert config["evaluation_script"] == "evaluation_script.zip"
    assert config["image"] == "logo.png"
    assert set(nested.namelist()) == {"__init__.py", "main.py"}
    assert "from .main import evaluate" in nested.read("__init__.py").decode()
    for phase in config["challenge_phases"]:
        assert phase["test_annotation_file"] in names
        assert phase["description"] in names
        assert phase["public_data"] and set(phase["public_data"]) <= names
        code = phase.get("submission_type") == "code"
        assert phase["allowed_submission_file_types"] == (".pkl" if code else ".csv")
        if code:  # the hidden features are in the zip, and not for download
            assert phase["test_input_file"] in names
            assert phase["test_input_file"] not in phase["public_data"]
        assert not any(path.startswith("annotations/") for path in phase["public_data"])
    # Sample submissions are fixtures for the platform, not bundle content.
    assert not any("sample_submission" in n for n in names)


@pytest.mark.parametrize("name", STARTERS)
def test_config_is_consistent(bundles, name):
    _, config, _ = bundles[name]
    schema = config["leaderboard"][0]["schema"]
    assert schema["default_order_by"] in schema["labels"]
    assert set(schema["metadata"]) == set(schema["labels"])
    phase_ids = {p["id"] for p in config["challenge_phases"]}
    split_ids = {s["id"] for s in config["dataset_splits"]}
    for link in config["challenge_phase_splits"]:
        assert link["challenge_phase_id"] in phase_ids
        assert link["dataset_split_id"] in split_ids
        assert link["visibility"] in (1, 3)
    # Every phase has one public split; the test/live phase adds a host-only "private" one.
    split_codename = {s["id"]: s["codename"] for s in config["dataset_splits"]}
    visibility = {
        split_codename[link["dataset_split_id"]]: link["visibility"]
        for link in config["challenge_phase_splits"]
    }
    for splits in starter_phases(name).values():
        assert [visibility[split] for split in splits] == [3, 1][: len(splits)]
        assert splits[1:] in ([], ["private"])
    assert str(config["start_date"]) < "2025" and str(config["end_date"]).startswith("2099")


@pytest.mark.parametrize(("name", "phase"), PHASES)
def test_sample_submission_scores_every_split_of_its_phase(built, bundles, name, phase, capsys):
    out_dir, _ = built
    _, config, _ = bundles[name]
    labels = config["leaderboard"][0]["schema"]["labels"]
    output = _evaluate(bundles, name, phase, sample_submissions(out_dir)[name][phase])

    splits = [next(iter(entry)) for entry in output["result"]]
    assert splits == starter_phases(name)[phase]
    for scores in _scores(output).values():
        assert list(scores) == labels
        assert all(type(v) is float and math.isfinite(v) for v in scores.values()), scores
    assert set(output["submission_result"]) == {splits[0]}
    assert isinstance(output["submission_metadata"], dict)
    printed = capsys.readouterr().out
    assert "Completed evaluation" in printed
    # stdout goes to the participant: host-only scores must not appear in it.
    assert "private" not in printed


def test_tabular_sample_submission_beats_chance(built, bundles):
    out_dir, _ = built
    samples = sample_submissions(out_dir)["tabular_classification"]
    for phase in ("dev", "test"):
        for scores in _scores(
            _evaluate(bundles, "tabular_classification", phase, samples[phase])
        ).values():
            assert 0.55 < scores["Accuracy"] < 0.95
            assert 0.5 < scores["Macro-F1"] < 0.95


@pytest.mark.parametrize("phase", ["dev", "test"])
def test_tabular_ground_truth_scores_one(bundles, tmp_path, phase):
    truth = _annotations(bundles, "tabular_classification", phase)
    path = tmp_path / "truth.csv"
    truth.sample(frac=1, random_state=0)[["id", "label"]].to_csv(path, index=False)
    for scores in _scores(_evaluate(bundles, "tabular_classification", phase, path)).values():
        assert scores == {"Accuracy": 1.0, "Macro-F1": 1.0}


def test_tabular_constant_prediction_scores_the_class_share(bundles, tmp_path):
    truth = _annotations(bundles, "tabular_classification", "test")
    path = tmp_path / "constant.csv"
    truth.assign(label=1)[["id", "label"]].to_csv(path, index=False)
    scores = _scores(_evaluate(bundles, "tabular_classification", "test", path))
    for split, values in scores.items():
        share = float((truth[truth["split"] == split]["label"] == 1).mean())
        assert values["Accuracy"] == pytest.approx(share)
        # F1 of class 1 is 2p/(1+p), the others score 0.
        assert values["Macro-F1"] == pytest.approx(2 * share / (1 + share) / 3)


@pytest.mark.parametrize("phase", ["validation", "live"])
def test_numerai_ground_truth_and_its_reverse(bundles, tmp_path, phase):
    truth = _annotations(bundles, "numerai_regression", phase)
    path = tmp_path / "truth.csv"
    truth.rename(columns={"target": "prediction"})[["id", "prediction"]].to_csv(path, index=False)
    for scores in _scores(_evaluate(bundles, "numerai_regression", phase, path)).values():
        assert scores["Corr"] == pytest.approx(1.0)
        assert scores["CorrPearson"] == pytest.approx(1.0)
        assert scores["MaxDrawdown"] == 0.0
        assert scores["Sharpe"] == 0.0  # per-era corr never varies: zero by convention

    truth.assign(prediction=1 - truth["target"])[["id", "prediction"]].to_csv(path, index=False)
    output = _evaluate(bundles, "numerai_regression", phase, path)
    for split, scores in _scores(output).items():
        n_eras = truth[truth["split"] == split]["era"].nunique()
        assert scores["Corr"] == pytest.approx(-1.0)
        # The running sum falls by 1 each era from its peak of 0.
        assert scores["MaxDrawdown"] == pytest.approx(-n_eras)


def test_numerai_constant_prediction_scores_zero_without_nan(bundles, tmp_path):
    truth = _annotations(bundles, "numerai_regression", "live")
    path = tmp_path / "constant.csv"
    truth.assign(prediction=0.5)[["id", "prediction"]].to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output = _evaluate(bundles, "numerai_regression", "live", path)
    for scores in _scores(output).values():
        assert scores == {"Corr": 0.0, "Sharpe": 0.0, "MaxDrawdown": 0.0, "CorrPearson": 0.0}


def test_numerai_sample_submission_has_a_real_drawdown(built, bundles):
    out_dir, _ = built
    sample = sample_submissions(out_dir)["numerai_regression"]["validation"]
    output = _evaluate(bundles, "numerai_regression", "validation", sample)
    scores = _scores(output)["validation_split"]
    per_era = list(output["submission_metadata"]["per_era_corr"]["validation_split"].values())
    assert len(per_era) == 12
    assert scores["Corr"] == pytest.approx(sum(per_era) / len(per_era))
    assert 0.0 < scores["Corr"] < 0.5
    assert scores["MaxDrawdown"] < 0.0


MALFORMED = {
    # case: (what the file holds, what the error message must say)
    "empty file": ("empty", "is empty"),
    "zip instead of csv": ("zip", "could not be read as a UTF-8 CSV"),
    "missing column": ("missing_column", "missing the column.*'{column}'"),
    "no header line": ("no_header", "Is the header line missing"),
    "duplicate id": ("duplicate", "more than once"),
    "missing ids": ("missing_ids", "lacks predictions for 3 of"),
    "unknown id": ("unknown_id", "not in this phase's data: 'no-such-id'"),
    "empty value": ("empty_value", "empty value"),
    "bad value": ("bad_value", "'cat'"),
}


def _malformed(kind, good, column):
    as_csv = good.to_csv(index=False)
    return {
        "empty": b"",
        "zip": b"PK\x03\x04\x14\x00\x00\x08\xff\xfe\x00\x00" * 40,
        "missing_column": good[["id"]].to_csv(index=False),
        "no_header": as_csv.split("\n", 1)[1],
        "duplicate": as_csv + as_csv.split("\n")[1] + "\n",
        "missing_ids": good.iloc[:-3].to_csv(index=False),
        "unknown_id": as_csv + "no-such-id,1\n",
        "empty_value": good.assign(**{column: ""}).to_csv(index=False),
        "bad_value": good.assign(**{column: "cat"}).to_csv(index=False),
    }[kind]


@pytest.mark.parametrize("case", MALFORMED)
@pytest.mark.parametrize(
    ("name", "phase", "column"),
    [
        ("tabular_classification", "dev", "label"),
        ("numerai_regression", "validation", "prediction"),
    ],
)
def test_malformed_submission_raises_value_error_saying_what_to_fix(
    bundles, tmp_path, name, phase, column, case
):
    kind, message = MALFORMED[case]
    truth = _annotations(bundles, name, phase)
    good = truth.rename(columns={"label": column, "target": column})[["id", column]]
    content = _malformed(kind, good, column)
    path = tmp_path / "submission.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message.format(column=column)):
        _evaluate(bundles, name, phase, path)


@pytest.mark.parametrize("name", STARTERS)
def test_unknown_phase_is_refused(built, bundles, name):
    out_dir, _ = built
    phase, sample = next(iter(sample_submissions(out_dir)[name].items()))
    folder, config, module = bundles[name]
    annotations = folder / _phase(config, phase)["test_annotation_file"]
    with pytest.raises(ValueError, match="does not know the phase 'nope'"):
        module.evaluate(str(annotations), str(sample), "nope")


def test_submissions_for_the_other_phase_are_refused(built, bundles):
    out_dir, _ = built
    samples = sample_submissions(out_dir)["tabular_classification"]
    with pytest.raises(ValueError, match="another phase"):
        _evaluate(bundles, "tabular_classification", "test", samples["dev"])


def test_tabular_labels_written_as_floats_are_accepted(bundles, tmp_path):
    truth = _annotations(bundles, "tabular_classification", "dev")
    path = tmp_path / "floats.csv"
    truth.assign(label=truth["label"].astype(float))[["id", "label"]].to_csv(path, index=False)
    scores = _scores(_evaluate(bundles, "tabular_classification", "dev", path))
    assert scores["dev_split"]["Accuracy"] == 1.0

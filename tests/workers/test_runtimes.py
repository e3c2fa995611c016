"""Runtimes (DESIGN section 16): a model runs under the Python version it was pickled
with. Two real CPython versions: the worker's own and another one from the machine's
pyenv, whose environment gets the worker's model packages from the package registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from challenges.tournaments.core import TournamentRefused
from challenges.tournaments.runtimes import OWN_VERSION, runtime_choose, runtimes_describe
from workers.code_runner import check_predictions, run_predict
from workers.predict import DEFAULTS
from workers.runtimes import runtime_python

OTHER = "3.12" if OWN_VERSION != "3.12" else "3.11"
MODEL = """
import cloudpickle, sys
import pandas as pd

def predict(features):
    return pd.DataFrame({"prediction": features["f"] / 10.0}, index=features.index)

sys.stdout.buffer.write(cloudpickle.dumps(predict))
"""


def _other_interpreter() -> str:
    # pyenv keeps every version beside the worker's own (sys.base_prefix is one of them).
    found = sorted(Path(sys.base_prefix).parent.glob(f"{OTHER}.*/bin/python"))
    assert found, f"no CPython {OTHER} beside {sys.base_prefix}"
    return str(found[-1])


@pytest.fixture
def two_runtimes(settings, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o755)
    settings.EVALUATION_CACHE_DIR = str(cache)
    settings.PREDICT_PYTHONS = f"{OWN_VERSION}={sys.executable},{OTHER}={_other_interpreter()}"
    # Only what the harness needs, to keep the build cheap; pip's own configuration names
    # the registry.
    settings.PREDICT_RUNTIME_PACKAGES = ["numpy", "pandas", "pyarrow", "cloudpickle"]
    settings.EVALUATION_PIP_ARGS = []


def test_an_upload_names_a_runtime_offered_or_is_refused_with_the_list(two_runtimes):
    newest = max([OWN_VERSION, OTHER], key=lambda v: tuple(map(int, v.split("."))))
    assert runtime_choose("") == newest
    assert runtime_choose(f"{OTHER}.1") == OTHER
    with pytest.raises(TournamentRefused) as refused:
        runtime_choose("2.7")
    assert OWN_VERSION in str(refused.value) and OTHER in str(refused.value)


@pytest.mark.slow
def test_a_model_pickled_under_another_python_runs_under_it_and_not_under_ours(
    two_runtimes, tmp_path
):
    other = runtime_python(OTHER)
    assert other != sys.executable
    pickled = subprocess.run([other, "-c", MODEL], capture_output=True, check=True).stdout
    model = tmp_path / "model.pkl"
    model.write_bytes(pickled)
    features = tmp_path / "features.csv"
    features.write_text("id,f\na,1\nb,5\nc,9\n")

    output = tmp_path / "predictions.csv"
    outcome = run_predict(
        model_file=model, features_file=features, output_file=output, limits=DEFAULTS, python=other
    )
    check_predictions(outcome, predictions_file=output, features_file=features)
    assert outcome.ok, outcome.message
    assert pd.read_csv(output)["prediction"].tolist() == [0.1, 0.5, 0.9]

    # The same pickle under the worker's own Python: a version mismatch naming the pickle.
    mine = run_predict(
        model_file=model, features_file=features, output_file=output, limits=DEFAULTS
    )
    assert (mine.ok, mine.failure) == (False, "environment"), mine.message
    assert "version mismatch" in mine.message and f"Python {OWN_VERSION}" in mine.message

    # Each runtime states its Python and package versions; the other got the worker's.
    described = {r["version"]: r for r in runtimes_describe()}
    assert described[OTHER]["python"].startswith(OTHER)
    assert described[OWN_VERSION]["python"].startswith(OWN_VERSION)
    assert described[OTHER]["packages"]["pandas"] == described[OWN_VERSION]["packages"]["pandas"]

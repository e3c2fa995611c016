"""What a participant's predict() returns is checked before evaluate() sees it. Pure: no
database, no sandbox."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workers.harness.evalserver_predict import (
    InvalidPredictions,
    read_features,
    validate_predictions,
)

IDS = pd.Index(["a", "b", "c", "d"], name="id")


def frame(values, index=IDS, column="prediction"):
    return pd.DataFrame({column: values}, index=index)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            pd.Series([0.1, 0.2, 0.3, 0.4], index=IDS),
            "returned pandas.Series, not a pandas DataFrame",
        ),
        ([0.1, 0.2, 0.3, 0.4], "returned builtins.list, not a pandas DataFrame"),
        (None, "returned builtins.NoneType, not a pandas DataFrame"),
        (frame([0.1] * 4, column="target"), "has no 'prediction' column (its columns: 'target')"),
        (
            pd.DataFrame({"id": list(IDS), "prediction": [0.1] * 4}),
            "must have exactly one column, 'prediction'; it has 2: 'id', 'prediction'",
        ),
        (frame(["high", "low", "low", "low"]), "holds str values, not numbers"),
        (frame([True, False, True, False]), "holds bool values, not numbers"),
        (
            frame([0.1, 0.2, 0.3, 0.4], index=pd.Index(["a", "a", "b", "c"])),
            "1 id(s) appear more than once in the index: 'a'",
        ),
        (
            frame([0.1, 0.2, 0.3], index=pd.Index(["a", "b", "c"])),
            "1 of the 4 input id(s) have no prediction: 'd'",
        ),
        (
            frame([0.1] * 5, index=pd.Index(["a", "b", "c", "d", "zz"])),
            "1 id(s) in the index are not in the input: 'zz'",
        ),
        (
            frame([0.1, np.nan, 0.3, 0.4]),
            "1 prediction(s) are NaN or infinite, for example for id(s) 'b'",
        ),
        (frame([0.1, 0.2, np.inf, -np.inf]), "2 prediction(s) are NaN or infinite"),
        (
            frame([0.1, 1.5, 0.3, -0.2]),
            "2 prediction(s) are outside the allowed range [0, 1], for example 1.5, -0.2 for id(s) 'b', 'd'",
        ),
    ],
)
def test_each_invalid_output_is_refused_saying_what_is_wrong(output, message):
    with pytest.raises(InvalidPredictions) as raised:
        validate_predictions(output, ids=IDS, prediction_range=(0.0, 1.0))
    assert message in str(raised.value)


def test_a_positional_index_is_refused_naming_the_missing_ids():
    with pytest.raises(InvalidPredictions, match="4 of the 4 input id"):
        validate_predictions(pd.DataFrame({"prediction": [0.1] * 4}), ids=IDS)


def test_valid_predictions_in_any_order_come_back_as_floats_in_the_input_order():
    checked = validate_predictions(
        frame([4, 3, 2, 1], index=pd.Index(["d", "c", "b", "a"])), ids=IDS
    )
    assert list(checked.index) == list(IDS)
    assert checked["prediction"].dtype == np.float64
    assert list(checked["prediction"]) == [1.0, 2.0, 3.0, 4.0]


def test_without_a_range_any_finite_number_is_accepted():
    checked = validate_predictions(frame([-1e9, 0, 1e9, 3]), ids=IDS)
    assert checked["prediction"].tolist() == [-1e9, 0.0, 1e9, 3.0]


def test_features_are_indexed_by_their_id_column_in_csv_and_parquet(tmp_path):
    data = pd.DataFrame({"id": ["x1", "x2"], "era": [1, 2], "f": [0.5, 0.25]})
    data.to_csv(tmp_path / "f.csv", index=False)
    data.to_parquet(tmp_path / "columns.parquet", index=False)
    data.set_index("id").to_parquet(tmp_path / "indexed.parquet")
    for name in ("f.csv", "columns.parquet", "indexed.parquet"):
        features = read_features(str(tmp_path / name))
        assert list(features.index) == ["x1", "x2"], name
        assert list(features.columns) == ["era", "f"], name


def test_the_worker_reads_only_the_id_column_of_the_features(tmp_path, monkeypatch):
    """feature_ids (what predictions are checked against) agrees with read_features, and
    never loads the features themselves."""
    from workers import code_runner

    data = pd.DataFrame({"id": ["x1", "x2"], "era": [1, 2], "f": [0.5, 0.25]})
    data.to_csv(tmp_path / "f.csv", index=False)
    data.drop(columns="id").to_csv(tmp_path / "first.csv", index=False)
    data.to_parquet(tmp_path / "columns.parquet", index=False)
    data.set_index("id").to_parquet(tmp_path / "indexed.parquet")
    data.drop(columns="id").to_parquet(tmp_path / "range.parquet")
    expected = {
        name: list(read_features(str(tmp_path / name)).index.astype(str))
        for name in ("f.csv", "first.csv", "columns.parquet", "indexed.parquet", "range.parquet")
    }
    code_runner._feature_ids.cache_clear()
    seen_columns = []
    real_read_table = __import__("pyarrow.parquet", fromlist=["read_table"]).read_table

    def read_table(path, columns=None, **kwargs):
        seen_columns.append(columns)
        return real_read_table(path, columns=columns, **kwargs)

    monkeypatch.setattr("pyarrow.parquet.read_table", read_table)
    for name, ids in expected.items():
        if name != "range.parquet":  # row numbers as ids: the one case that reads it all
            monkeypatch.setattr(code_runner, "read_features", None)
        assert list(code_runner.feature_ids(tmp_path / name)) == ids, name
        monkeypatch.undo()
        monkeypatch.setattr("pyarrow.parquet.read_table", read_table)
    # columns.parquet and indexed.parquet: the id column alone (range.parquet reads it all).
    assert seen_columns[:2] == [["id"], ["id"]], seen_columns
    assert expected["first.csv"] == ["1", "2"]

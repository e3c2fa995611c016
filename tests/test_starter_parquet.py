"""The out-of-core Parquet starter: a million rows generated at build time (not in git),
scored in batches with less memory than the predictions file takes loaded whole."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.ooc import STARTER, measure_ooc
from starters.build import STARTERS_DIR, build_starter


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("parquet-starter")
    figures = measure_ooc(out)  # builds the starter into `out`, then measures
    bundle = out / f"{STARTER}-bundle"
    spec = importlib.util.spec_from_file_location(
        "_parquet_eval",
        bundle / "evaluation_script" / "__init__.py",
        submodule_search_locations=[str(bundle / "evaluation_script")],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["_parquet_eval"] = module
    spec.loader.exec_module(module)
    return out, bundle, figures, module


def test_the_data_is_generated_at_build_time_not_stored(built):
    out, bundle, figures, _ = built
    assert not list((STARTERS_DIR / STARTER).rglob("*.parquet"))
    features = pq.ParquetFile(bundle / "data" / "live_features.parquet")
    assert features.metadata.num_rows == 1_000_000
    schema = features.schema_arrow
    assert schema.field("era").type == pa.int16()
    assert {schema.field(f"feature_{i:02d}").type for i in range(20)} == {pa.int8()}
    assert figures.rows == 1_000_000


def test_building_twice_gives_the_same_bytes(built, tmp_path):
    out, _, _, _ = built
    again = build_starter(STARTER, tmp_path)
    assert again.read_bytes() == (out / f"{STARTER}.zip").read_bytes()


def test_evaluate_scores_a_million_rows_in_less_memory_than_the_file_loaded_whole(built):
    _, _, figures, _ = built
    ((split, scores),) = figures.result[0].items()
    assert split == "live"
    assert 0.3 < scores["Corr"] < 0.6
    # Peak RSS growth of evaluate() in a fresh child, against the same predictions as one
    # pandas DataFrame (its deep memory usage; reading it grows RSS more than that).
    assert figures.eval_peak_mib < figures.file_in_memory_mib, figures
    assert figures.file_in_memory_mib < figures.load_peak_mib, figures


def _annotations(bundle: Path) -> pa.Table:
    return pq.read_table(bundle / "annotations" / "live_targets.parquet")


def _evaluate(module, bundle, table, tmp_path):
    path = tmp_path / "predictions.parquet"
    pq.write_table(table, path, row_group_size=100_000)  # other row groups than the truth's
    return module.evaluate(str(bundle / "annotations" / "live_targets.parquet"), str(path), "live")[
        "result"
    ][0]["live"]


def test_the_target_itself_scores_one(built, tmp_path):
    _, bundle, _, module = built
    truth = _annotations(bundle)
    scores = _evaluate(
        module, bundle, pa.table({"id": truth["id"], "prediction": truth["target"]}), tmp_path
    )
    assert scores["Corr"] == pytest.approx(1.0)
    assert scores["MaxDrawdown"] == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("swap", "Row 0: id 'n000000001' where 'n000000000' was expected"),
        ("short", "has 999999 rows; it needs 1000000"),
        ("no_prediction", "lacks column(s) prediction"),
        ("nan", "Row 5: the prediction is not a finite number"),
    ],
)
def test_bad_predictions_are_refused_with_a_clear_message(built, tmp_path, change, message):
    _, bundle, _, module = built
    truth = _annotations(bundle)
    ids, values = truth["id"], pa.array([0.5] * truth.num_rows)
    if change == "swap":
        order = pa.array([1, 0, *range(2, truth.num_rows)])
        ids = ids.take(order)
    table = pa.table({"id": ids, "prediction": values})
    if change == "short":
        table = table.slice(1)
    if change == "no_prediction":
        table = table.drop_columns(["prediction"]).append_column("pred", values)
    if change == "nan":
        table = table.set_column(
            1, "prediction", pa.array([0.5] * 5 + [float("nan")] + [0.5] * (truth.num_rows - 6))
        )
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _evaluate(module, bundle, table, tmp_path)


def test_a_csv_is_not_a_parquet_file(built, tmp_path):
    _, bundle, _, module = built
    path = tmp_path / "predictions.parquet"
    path.write_text("id,prediction\nn0,0.5\n")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        module.evaluate(str(bundle / "annotations" / "live_targets.parquet"), str(path), "live")

"""The result parser (pure): our shape, EvalAI's remote-evaluation shape, missing labels."""

from __future__ import annotations

import pytest

from challenges.results import ResultError, parse_result

SPLITS = {"train_split": ["Metric1", "Metric2"], "test_split": ["Metric1", "Metric2"]}


def test_evalais_update_submission_shape_is_read_with_show_to_participant():
    parsed = parse_result(
        {
            "result": [
                {
                    "split": "train_split",
                    "show_to_participant": True,
                    "accuracies": {"Metric1": 90},
                },
                {
                    "split": "test_split",
                    "show_to_participant": False,
                    "accuracies": {"Metric1": 50, "Metric2": 40},
                },
            ]
        },
        splits=SPLITS,
    )
    assert parsed.scores == {
        "train_split": {"Metric1": 90.0},
        "test_split": {"Metric1": 50.0, "Metric2": 40.0},
    }
    assert parsed.hidden_splits == ["test_split"]
    assert parsed.missing_labels == {"train_split": ["Metric2"]}
    assert "'train_split' lacks label(s) Metric2" in parsed.warnings()[0]


def test_an_evalai_entry_without_show_to_participant_is_hidden_as_in_evalai():
    parsed = parse_result(
        {"result": [{"split": "train_split", "accuracies": {"Metric1": 1, "Metric2": 2}}]},
        splits={"train_split": ["Metric1", "Metric2"]},
    )
    assert parsed.hidden_splits == ["train_split"] and parsed.missing_labels == {}


def test_our_shape_still_reads_and_shows_every_split():
    parsed = parse_result(
        {"result": [{"train_split": {"Metric1": 1, "Metric2": 2}}, {"test_split": {"Metric1": 3}}]},
        splits=SPLITS,
    )
    assert parsed.hidden_splits == [] and parsed.missing_labels == {"test_split": ["Metric2"]}


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"split": "nope", "accuracies": {"Metric1": 1}}, "names split 'nope'"),
        ({"split": "train_split", "accuracies": {"Metric1": "high"}}, "'high', not a number"),
        ({"split": "train_split", "accuracies": "results"}, "must be a dict"),
        ({"split": "train_split", "accuracies": {}, "extra": 1}, "has key(s) extra"),
    ],
)
def test_a_malformed_evalai_entry_is_named(entry, named):
    with pytest.raises(ResultError) as raised:
        parse_result({"result": [entry]}, splits={"train_split": ["Metric1"]})
    assert named in str(raised.value)

"""`evalserver-cli` tables line up with Japanese names: a terminal gives East Asian wide
and full-width characters two columns, combining marks none."""

from __future__ import annotations

import unicodedata

from evalserver.cli.api import _print_table, _quoted, display_width


def test_display_width_counts_terminal_columns():
    assert display_width("team") == 4
    assert display_width("花子チーム") == 10
    assert display_width("ｆｕｌｌ") == 8  # full-width forms
    assert display_width("ﾒｿｯﾄﾞ") == 5  # half-width katakana
    assert display_width(unicodedata.normalize("NFD", "ガ")) == 2  # カ + combining mark
    assert display_width("🚀") == 2


def test_a_table_of_japanese_names_lines_up(capsys):
    rows = [
        {"rank": 1, "team": "花子チーム 🚀", "score": 0.91},
        {"rank": 2, "team": "Bob", "score": 0.8},
        {"rank": 3, "team": "ｶﾞ" + "カ\u3099", "score": 0.7},
    ]
    _print_table(rows, ["rank", "team", "score"])
    lines = capsys.readouterr().out.splitlines()
    # Every score starts in the same terminal column, whatever script the team is in.
    starts = [
        display_width(line[: line.index(score)])
        for line, score in zip(lines[1:], ["0.91", "0.8", "0.7"], strict=True)
    ]
    assert len(set(starts)) == 1
    assert display_width(lines[0][: lines[0].index("score")]) == starts[0]


def test_a_japanese_file_name_is_sent_as_browsers_send_it():
    assert _quoted("提出 結果.csv") == "提出 結果.csv"
    assert _quoted('a"b\r\n.csv') == "a%22b%0D%0A.csv"

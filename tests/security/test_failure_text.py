"""Issue 22: host paths reached participants past the failure scrubber (URL schemes, a
path after a letter, folder names with spaces, single-quoted frames, Windows, S3). The
participant's text is now built from an allow-list; this is the table of path shapes it
is held to, each with the words that must not survive."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from challenges.failure_text import participant_failure_text

# (message, words that must be gone, what must remain)
SHAPES = [
    (
        "cannot open file:///srv/data/labels.csv now",
        ["srv", "data/"],
        "cannot open <path>/labels.csv now",
    ),
    (
        "db sqlite:////srv/evalserver/db.sqlite3 locked",
        ["srv", "sqlite:"],
        "db <path>/db.sqlite3 locked",
    ),
    ("key:/srv/secret/labels.csv missing", ["srv", "secret"], "key:<path>/labels.csv missing"),
    ("abc/srv/secret/labels.csv", ["srv", "secret"], "abc<path>/labels.csv"),
    ("x//srv/secret/labels.csv", ["srv", "secret"], "x<path>/labels.csv"),
    ("open /srv/my data/x.csv failed", ["srv", "my", "data"], "open <path>/x.csv failed"),
    (
        "No such file: '/srv/my data/x.csv'",
        ["srv", "my data", "data/"],
        "No such file: '<path>/x.csv'",
    ),
    ('No such file: "/srv/a b c/x.csv"', ["srv", "a b c"], 'No such file: "<path>/x.csv"'),
    (
        "Traceback (most recent call last):\n  File '/srv/app/main.py', line 3, in evaluate\n"
        "    secret = LABELS[0]\nValueError: bad",
        ["srv", "LABELS", "line 3"],
        "ValueError: bad",
    ),
    (r"C:\Users\host\labels.csv not found", ["Users", "host"], "<path>/labels.csv not found"),
    (
        r"C:\Program Files\host data\labels.csv not found",
        ["Program", "host"],
        "<path>/labels.csv not found",
    ),
    ("C:/Users/host/labels.csv", ["Users", "host"], "<path>/labels.csv"),
    (r"'C:\\Users\\host\\labels.csv'", ["Users", "host"], "'<path>/labels.csv'"),
    (r"\\fileserver\share\labels.csv", ["fileserver", "share"], "<path>/labels.csv"),
    ("s3://my-bucket/annotations/test.csv gone", ["bucket", "annotations"], "<path>/test.csv gone"),
    ("gs://bucket/key, hdfs://nn:8020/x/y", ["bucket", "nn:8020"], "<path>/key, <path>/y"),
    ("../secret/labels.csv", ["secret", ".."], "<path>/labels.csv"),
    (r"..\secret\labels.csv", ["secret"], "<path>/labels.csv"),
    ("~/private/x.csv", ["private", "~"], "<path>/x.csv"),
    ("open(/srv/x/y.csv)", ["srv"], "open(<path>/y.csv)"),
    ("see /srv/x/main.py: bad row", ["srv"], "see <path>/main.py: bad row"),
]


@pytest.mark.parametrize(("message", "gone", "expected"), SHAPES)
def test_every_path_shape_is_replaced(message, gone, expected):
    text = participant_failure_text(message, folders=[])
    for word in gone:
        assert word not in text, (message, text)
    assert text == expected


def test_plain_text_links_ratios_and_word_pairs_stay():
    message = "see https://example.org/a/b: 3/4 rows, and/or 0.5/1 (x/y)."
    assert participant_failure_text(message, folders=[]) == message


@pytest.mark.parametrize(
    "folder",
    ["/srv/my media", "/opt/eval server/cache", r"D:\evalserver data"],
)
def test_the_hosts_own_folders_go_wherever_they_appear(folder):
    for message in (
        f"x{folder}/a/b.csv",
        f"{folder} is full",
        f"path={folder}",
        f"'{folder}/y z/w.csv'",
    ):
        text = participant_failure_text(message, folders=[folder])
        last = folder.replace("\\", "/").rsplit("/", 1)[-1]
        assert last not in text and "<path>" in text, (message, text)


def test_the_configured_folders_are_the_default(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "my media"
    settings.EVALUATION_CACHE_DIR = tmp_path / "worker cache"
    for folder in (
        settings.MEDIA_ROOT,
        settings.EVALUATION_CACHE_DIR,
        django_settings.BASE_DIR,
        Path(sys.prefix),
    ):
        text = participant_failure_text(f"bad file {folder}/sub dir/x.csv here")
        assert str(folder) not in text and "sub dir" not in text, text
        assert text == "bad file <path>/x.csv here"


def test_the_cut_is_after_the_scrub_and_marked():
    text = participant_failure_text("/srv/a/b.csv " + "y" * 5000, folders=[])
    assert len(text) == 1000 and text.startswith("<path>/b.csv") and text.endswith("…")


def test_an_object_stores_endpoint_is_a_host_folder_too(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"endpoint_url": "http://minio.internal:9000"},
        },
    }
    text = participant_failure_text(
        "GET http://minio.internal:9000/evalserver/annotations/t.csv 403"
    )
    assert "minio" not in text and "annotations" not in text
    assert text == "GET <path>/t.csv 403"

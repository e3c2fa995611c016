"""Zip entry names in any script: what Windows, macOS and 7-Zip really write.

Python's zipfile reads a name without the UTF-8 flag as cp437. EvalAI hosts on a
Japanese Windows zip with Explorer, which writes cp932 (Shift-JIS) without the flag;
macOS and older 7-Zip write UTF-8 without it, macOS in NFD. The bundle loader must
find 説明.html whichever way the name was written.
"""

from __future__ import annotations

import io
import struct
import unicodedata
import zipfile
import zlib

import pytest

from challenges.bundle import BundleError, load_bundle
from challenges.bundle.names import entry_name
from tests.challenges import bundle_factory as bf

DESCRIPTION = "<p>日本語の説明 🚀</p>"


class _Raw(zipfile.ZipInfo):
    """A member whose name is written as the given bytes, with the UTF-8 flag or not."""

    def __init__(self, raw: bytes, *, utf8_flag: bool = False, extra: bytes = b""):
        super().__init__(raw.decode("cp437"), date_time=(2024, 1, 1, 0, 0, 0))
        self.raw, self.utf8_flag, self.extra = raw, utf8_flag, extra
        self.compress_type = zipfile.ZIP_DEFLATED

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's own name
        flags = self.flag_bits | 0x800 if self.utf8_flag else self.flag_bits & ~0x800
        return self.raw, flags


def legacy_zip(files: dict[str, bytes | str], encode, **kw) -> bytes:
    """A zip whose names are `encode(name)`, as a tool without the UTF-8 flag writes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            zf.writestr(_Raw(encode(name), **kw), data)
    return buffer.getvalue()


def _bundle_files(html_name: str) -> dict[str, bytes | str]:
    config = bf.starter_config()
    config["title"] = "画像分類コンペ 🏆"
    config["description"] = html_name
    files = {k: v for k, v in bf.starter_files(config).items() if not k.endswith("/")}
    files[html_name] = DESCRIPTION
    return files


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda n: n.encode("cp932"), id="cp932-from-japanese-windows"),
        pytest.param(lambda n: n.encode("utf-8"), id="utf8-without-the-flag"),
        pytest.param(
            lambda n: unicodedata.normalize("NFD", n).encode("utf-8"), id="macos-nfd-utf8"
        ),
    ],
)
def test_a_bundle_zipped_on_windows_or_macos_finds_its_japanese_file_names(tmp_path, encode):
    path = tmp_path / "bundle.zip"
    path.write_bytes(legacy_zip(_bundle_files("テンプレート/説明がいど.html"), encode))
    with load_bundle(path) as bundle:
        assert bundle.spec.title == "画像分類コンペ 🏆"
        assert bundle.spec.description == DESCRIPTION


def test_a_missing_japanese_file_is_named_in_the_problem_as_written(tmp_path):
    files = _bundle_files("説明.html")
    files["せつめい.html"] = files.pop("説明.html")
    path = tmp_path / "bundle.zip"
    path.write_bytes(legacy_zip(files, lambda n: n.encode("cp932")))
    with pytest.raises(BundleError) as caught:
        load_bundle(path)
    messages = [p.message for p in caught.value.errors]
    assert any("'説明.html'" in m and "not in the zip" in m for m in messages), messages


def test_entry_names_are_decoded_by_what_fits():
    def info(raw: bytes, **kw) -> zipfile.ZipInfo:
        data = legacy_zip({"x": b""}, lambda _n: raw, **kw)
        return zipfile.ZipFile(io.BytesIO(data)).infolist()[0]

    assert entry_name(info("提出/結果.csv".encode("cp932"))) == "提出/結果.csv"
    assert entry_name(info("ｆｕｌｌ－ｗｉｄｔｈ.csv".encode())) == "ｆｕｌｌ－ｗｉｄｔｈ.csv"
    assert entry_name(info("é.txt".encode(), utf8_flag=True)) == "é.txt"
    # A real cp437 name (DOS-era "café") is neither UTF-8 nor cp932: kept as cp437.
    assert entry_name(info(b"caf\x82.txt")) == "café.txt"
    # NFD from macOS becomes the NFC the config spells.
    assert entry_name(info(unicodedata.normalize("NFD", "が.txt").encode())) == "が.txt"


def test_the_info_zip_unicode_path_field_wins_when_its_checksum_matches():
    legacy = b"?.txt"
    field = b"\x01" + struct.pack("<L", zlib.crc32(legacy)) + "絵文字😀.txt".encode()
    extra = struct.pack("<HH", 0x7075, len(field)) + field
    data = legacy_zip({"x": b""}, lambda _n: legacy, extra=extra)
    assert entry_name(zipfile.ZipFile(io.BytesIO(data)).infolist()[0]) == "絵文字😀.txt"
    # A stale field (the entry renamed by a tool that kept it) is ignored.
    stale = b"\x01" + struct.pack("<L", 0) + "古い.txt".encode()
    extra = struct.pack("<HH", 0x7075, len(stale)) + stale
    data = legacy_zip({"x": b""}, lambda _n: legacy, extra=extra)
    assert entry_name(zipfile.ZipFile(io.BytesIO(data)).infolist()[0]) == "?.txt"

"""Safe reading of (possibly hostile) zips for the bundle loader.

Everything here works from the zip's headers first and reads member data only
through capped reads: nothing is extracted, nothing is written to disk. Part of
`challenges.bundle`; import the public names from there.
"""

from __future__ import annotations

import io
import lzma
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from django.utils.translation import gettext as _

from challenges.bundle.names import MIB, check_name, entry_name, human_bytes, is_junk, show
from challenges.bundle.spec import BundleError, Limits, Problem

_SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
# Errors zipfile and the decompressors raise on corrupt or lying members.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)


class MemberError(Exception):
    """A member could not be read within its caps. The message names the member."""


def _central_directory(fp: IO[bytes]) -> tuple[int, int] | None:
    """(start, size) of the central directory, read from the end records like zipfile does.

    None when there is no end record; zipfile then says what is wrong.
    """
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    if size < 22:
        return None
    tail_len = min(size, 22 + 0xFFFF)
    tail_start = size - tail_len
    fp.seek(tail_start)
    tail = fp.read(tail_len)
    if tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\x00\x00":
        pos = len(tail) - 22
    else:
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + 22 > len(tail):
            return None
    _sig, _d, _dcd, _n1, entries, cd_size, cd_offset, _clen = struct.unpack(
        "<4s4H2LH", tail[pos : pos + 22]
    )
    end = tail_start + pos
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        locator = end - 20
        record = locator - 56
        if record < 0:
            return None
        fp.seek(record)
        data = fp.read(76)
        if data[:4] != b"PK\x06\x06" or data[56:60] != b"PK\x06\x07":
            return None
        cd_size = struct.unpack("<4sQ2H2L4Q", data[:56])[8]
        end = record
    return end - cd_size, cd_size


def _count_entries(fp: IO[bytes], start: int, size: int, stop_after: int) -> int | None:
    """Count central-directory records without building ZipInfo objects."""
    if start < 0:
        return None
    fp.seek(start)
    data = fp.read(size)
    count = pos = 0
    while pos + 46 <= len(data) and count <= stop_after:
        if data[pos : pos + 4] != b"PK\x01\x02":
            return None
        name_len, extra_len, comment_len = struct.unpack("<3H", data[pos + 28 : pos + 34])
        pos += 46 + name_len + extra_len + comment_len
        count += 1
    return count


class SafeZip:
    """A zip whose every entry passed the header checks. Member data is read only with caps."""

    def __init__(
        self,
        zf: zipfile.ZipFile,
        files: dict[str, zipfile.ZipInfo],
        *,
        label: str,
        owned: IO[bytes] | None,
    ):
        self.zf = zf
        self.files = files  # normalised name -> info, regular files only
        self.label = label  # "" for the uploaded zip, else the nested zip's path
        self._owned = owned
        self.dirs = {n.rsplit("/", 1)[0] + "/" for n in files if "/" in n}
        for d in list(self.dirs):
            parts = d.rstrip("/").split("/")
            self.dirs.update("/".join(parts[:i]) + "/" for i in range(1, len(parts)))
        self._lower = {n.lower(): n for n in files}

    def where(self, name: str) -> str:
        return f"{self.label}/{name}" if self.label else name

    def is_file(self, name: str) -> bool:
        return name in self.files

    def is_dir(self, name: str) -> bool:
        return name.rstrip("/") + "/" in self.dirs

    def files_under(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        return sorted(n for n in self.files if n.startswith(prefix) and not is_junk(n))

    def similar(self, name: str) -> str | None:
        """The member whose name differs only in case, for a "did you mean" hint."""
        return self._lower.get(name.lower())

    def size(self, name: str) -> int:
        return self.files[name].file_size

    def read(self, name: str, cap: int) -> bytes:
        """The member's content; MemberError if it is over `cap` or corrupt."""
        info = self.files[name]
        if info.file_size > cap:
            raise MemberError(
                _("%(name)s is %(size)s, over the %(cap)s limit for this kind of file.")
                % {
                    "name": show(self.where(name)),
                    "size": human_bytes(info.file_size),
                    "cap": human_bytes(cap),
                }
            )
        try:
            with self.zf.open(info) as fh:
                # The header may lie about the size: never read past the cap.
                data = fh.read(cap + 1)
        except _READ_ERRORS as exc:
            raise MemberError(
                _("%(name)s could not be read (%(error)s); the zip is corrupt.")
                % {"name": show(self.where(name)), "error": exc}
            ) from exc
        if len(data) > cap:
            raise MemberError(
                _("%(name)s is larger than the %(cap)s limit.")
                % {"name": show(self.where(name)), "cap": human_bytes(cap)}
            )
        return data

    def open(self, name: str, cap: int) -> IO[bytes]:
        info = self.files[name]
        try:
            raw = self.zf.open(info)
        except _READ_ERRORS as exc:
            raise BundleError([_unreadable(exc, name)]) from exc
        return io.BufferedReader(
            _CappedStream(raw, min(cap, info.file_size), name), buffer_size=MIB
        )

    def close(self) -> None:
        try:
            self.zf.close()
        finally:
            if self._owned is not None:
                self._owned.close()
                self._owned = None


def _unreadable(exc: BaseException, name: str) -> Problem:
    message = _("It could not be read (%(error)s); the zip is corrupt.") % {"error": exc}
    return Problem(message, file=name)


class _CappedStream(io.RawIOBase):
    """Streams a member and fails, instead of going on, past the size its header declared."""

    def __init__(self, raw: IO[bytes], cap: int, name: str):
        self._raw = raw
        self._cap = cap
        self._name = name
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._raw.read(min(len(view), self._cap - self._count + 1))
        except _READ_ERRORS as exc:
            raise BundleError([_unreadable(exc, self._name)]) from exc
        self._count += len(data)
        if self._count > self._cap:
            message = _("It is larger than its %(cap)s limit.") % {"cap": human_bytes(self._cap)}
            raise BundleError([Problem(message, file=self._name)])
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_archive(
    source: str | Path | IO[bytes],
    *,
    limits: Limits,
    problems: list[Problem],
    label: str = "",
    total_cap: int | None = None,
    member_cap: int | None = None,
) -> SafeZip | None:
    """Open a zip and check every entry's header. None (with `problems` filled) if refused.

    `label` is "" for the uploaded bundle; for a nested zip it is the nested zip's path,
    and problems name the inner entry in their message.
    """
    total_cap = limits.max_total_uncompressed_bytes if total_cap is None else total_cap
    member_cap = limits.max_member_bytes if member_cap is None else member_cap
    what = show(label) if label else _("The upload")

    def refuse(message: str, file: str = "") -> None:
        problems.append(Problem(message, file=label or file))

    owned: IO[bytes] | None = None
    if isinstance(source, str | Path):
        try:
            fp = owned = open(source, "rb")  # noqa: SIM115 - closed by SafeZip.close or below
        except OSError as exc:
            refuse(_("The bundle could not be opened: %(error)s.") % {"error": exc.strerror or exc})
            return None
    else:
        fp = source
        if not (hasattr(fp, "seek") and getattr(fp, "seekable", lambda: True)()):
            refuse(_("The bundle must be given as a seekable file."))
            return None

    zf: zipfile.ZipFile | None = None
    try:
        located = _central_directory(fp)
        if located is not None:
            start, cd_size = located
            cd_cap = limits.max_entries * 1024 + MIB
            if cd_size > cd_cap:
                refuse(
                    _(
                        "%(what)s has a %(size)s table of contents, over the %(cap)s a zip "
                        "of at most %(entries)s entries needs."
                    )
                    % {
                        "what": what,
                        "size": human_bytes(cd_size),
                        "cap": human_bytes(cd_cap),
                        "entries": f"{limits.max_entries:,}",
                    }
                )
                return None
            count = _count_entries(fp, start, cd_size, limits.max_entries)
            if count is not None and count > limits.max_entries:
                refuse(
                    _("%(what)s has more than %(limit)s entries; that is the limit for a bundle.")
                    % {"what": what, "limit": f"{limits.max_entries:,}"}
                )
                return None
        fp.seek(0)
        try:
            zf = zipfile.ZipFile(fp)
        except (
            zipfile.BadZipFile,
            UnicodeDecodeError,
            ValueError,
            OSError,
            EOFError,
            struct.error,
        ) as exc:
            if label:
                message = _(
                    "%(what)s is not a valid zip file (%(error)s). Zip the evaluation package "
                    "itself."
                )
            else:
                message = _(
                    "%(what)s is not a valid zip file (%(error)s). Upload a .zip archive of "
                    "your challenge folder."
                )
            refuse(message % {"what": what, "error": exc})
            return None
        except NotImplementedError as exc:
            refuse(
                _("%(what)s uses a zip feature that is not supported (%(error)s).")
                % {"what": what, "error": exc}
            )
            return None
        files = _check_entries(zf.infolist(), limits, label, total_cap, member_cap, problems)
        if files is None:
            return None
        archive = SafeZip(zf, files, label=label, owned=owned)
        zf = owned = None
        return archive
    finally:
        if zf is not None:
            zf.close()
        if owned is not None:
            owned.close()


def _check_entries(
    infos: list[zipfile.ZipInfo],
    limits: Limits,
    label: str,
    total_cap: int,
    member_cap: int,
    problems: list[Problem],
) -> dict[str, zipfile.ZipInfo] | None:
    what = show(label) if label else _("The zip")
    if not infos:
        problems.append(Problem(_("%(what)s is empty.") % {"what": what}, file=label))
        return None
    if len(infos) > limits.max_entries:
        problems.append(
            Problem(
                _("%(what)s has %(count)s entries; the limit is %(limit)s.")
                % {"what": what, "count": f"{len(infos):,}", "limit": f"{limits.max_entries:,}"},
                file=label,
            )
        )
        return None

    before = len(problems)
    files: dict[str, zipfile.ZipInfo] = {}
    total = 0

    def refuse(raw: str, message: str, **values: Any) -> None:
        # The message is a whole sentence with %(entry)s where the entry's name goes.
        text = message % {"entry": show(raw), **values}
        problems.append(Problem(text, file=label or show(raw)[1:-1]))

    for info in infos:
        raw = entry_name(info)
        name, why = check_name(raw)
        if why:
            refuse(raw, why)
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            refuse(raw, _("Entry %(entry)s is a symbolic link; links are not allowed in a bundle."))
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            refuse(
                raw,
                _(
                    "Entry %(entry)s is a special file (device, pipe or socket); only files "
                    "and folders are allowed."
                ),
            )
            continue
        if info.flag_bits & 0x1:
            refuse(raw, _("Entry %(entry)s is encrypted; remove the password from the zip."))
            continue
        if info.compress_type not in _SUPPORTED_COMPRESSION:
            refuse(
                raw,
                _(
                    "Entry %(entry)s uses compression method %(method)s, which is not "
                    "supported; re-create the zip with standard (deflate) compression."
                ),
                method=info.compress_type,
            )
            continue
        if info.is_dir() or name.endswith("/") or not name:
            continue
        if info.file_size > member_cap:
            refuse(
                raw,
                _("Entry %(entry)s is %(size)s uncompressed, over the %(cap)s limit for one file."),
                size=human_bytes(info.file_size),
                cap=human_bytes(member_cap),
            )
            continue
        if info.file_size > MIB and info.file_size > limits.max_compression_ratio * max(
            info.compress_size, 1
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            refuse(
                raw,
                _(
                    "Entry %(entry)s expands %(ratio)s times (%(packed)s to %(size)s), over the "
                    "%(limit)sx limit; it looks like a zip bomb."
                ),
                ratio=f"{ratio:,.0f}",
                packed=human_bytes(info.compress_size),
                size=human_bytes(info.file_size),
                limit=f"{limits.max_compression_ratio:g}",
            )
            continue
        if name in files:
            refuse(
                raw,
                _("Entry %(entry)s appears twice in the zip; which copy to use would be a guess."),
            )
            continue
        total += info.file_size
        files[name] = info
    if total > total_cap:
        problems.append(
            Problem(
                _("%(what)s expands to %(size)s, over the %(cap)s limit.")
                % {"what": what, "size": human_bytes(total), "cap": human_bytes(total_cap)},
                file=label,
            )
        )
    return None if len(problems) > before else files


class Folder:
    """The config's folder inside the bundle: every path in the config is relative to it."""

    def __init__(self, archive: SafeZip, base: str):
        self.archive = archive
        self.base = base  # "" or "top-folder/"

    def full(self, rel: str) -> str:
        return self.base + rel

    def where(self, rel: str) -> str:
        """The path inside the uploaded zip, for messages."""
        return self.archive.where(self.full(rel))

    def is_file(self, rel: str) -> bool:
        return self.archive.is_file(self.full(rel))

    def is_dir(self, rel: str) -> bool:
        return self.archive.is_dir(self.full(rel))

    def files_under(self, rel: str) -> list[str]:
        return [n[len(self.base) :] for n in self.archive.files_under(self.full(rel))]

    def size(self, rel: str) -> int:
        return self.archive.size(self.full(rel))

    def read(self, rel: str, cap: int) -> bytes:
        return self.archive.read(self.full(rel), cap)

    def open(self, rel: str, cap: int) -> IO[bytes]:
        return self.archive.open(self.full(rel), cap)

    def hint(self, rel: str) -> str:
        """Why a path may not have been found, for a "not in the zip" message."""
        similar = self.archive.similar(self.full(rel))
        if similar is not None:
            return " " + _("(the zip has %(name)s; names are case-sensitive)") % {
                "name": show(similar)
            }
        base = rel.rsplit("/", 1)[-1]
        elsewhere = sorted(
            n for n in self.archive.files if n.rsplit("/", 1)[-1] == base and not is_junk(n)
        )
        if elsewhere and self.base:
            return " " + _(
                "(the zip has %(name)s; paths are relative to the folder of the config file, "
                "%(folder)s)"
            ) % {"name": show(elsewhere[0]), "folder": show(self.base)}
        if elsewhere:
            return " " + _(
                "(the zip has %(name)s; paths are relative to the folder of the config file)"
            ) % {"name": show(elsewhere[0])}
        return ""

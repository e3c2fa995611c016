"""The worker's cache of stored files (workers.scripts.cached): what a worker on a machine
without the web's disk fetches from storage, checked against the sha256 recorded at write
time, bounded in size, shared by several worker processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from workers import scripts
from workers.scripts import Stored, StoredFileMismatch, cached, evict, local_files, staged


@pytest.fixture
def cache(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EVALUATION_CACHE_DIR = tmp_path / "cache"
    settings.EVALUATION_CACHE_MAX_BYTES = 10 * 1024**2
    return tmp_path / "cache" / "blobs"


@pytest.fixture
def fetches(monkeypatch, tmp_path) -> Path:
    """Counts reads from storage, across processes: one line per fetch in a file."""
    log = tmp_path / "fetches.log"
    log.touch()
    real = scripts._open_stored

    def counting(name):
        with log.open("a") as out:
            out.write(f"{name}\n")
        return real(name)

    monkeypatch.setattr(scripts, "_open_stored", counting)
    return log


def put(name: str, content: bytes) -> Stored:
    path = default_storage.save(name, ContentFile(content))
    return Stored(path, hashlib.sha256(content).hexdigest())


def count(log: Path) -> int:
    return len(log.read_text().splitlines())


def test_it_fetches_a_stored_file_once_and_serves_it_from_the_cache_read_only(cache, fetches):
    item = put("annotations/truth.csv", b"id,label\n1,0\n")
    with cached(item) as first:
        assert first.read_bytes() == b"id,label\n1,0\n"
        assert first.parent == cache and first.name.endswith("-truth.csv")  # extension kept
        assert stat.S_IMODE(first.stat().st_mode) == 0o444
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    with cached(item) as second:
        assert second == first
    assert count(fetches) == 1
    assert [p.name for p in cache.iterdir() if not p.name.startswith(".")] == [first.name]


def test_a_process_hashes_a_cached_file_again_only_once_it_changed(cache, fetches, monkeypatch):
    item = put("inputs/live.csv", b"id,f1\n1,0.5\n")
    hashed = []
    real = scripts._sha256_of
    monkeypatch.setattr(scripts, "_sha256_of", lambda path: hashed.append(path) or real(path))
    for _ in range(5):  # a round's models, one after the other
        with cached(item):
            pass
    assert (count(fetches), len(hashed)) == (1, 0)  # hashed while fetched, not read again
    with cached(item) as path:
        pass
    path.chmod(0o644)
    path.write_bytes(b"id,f1\n1,0.6\n")
    with cached(item) as again:
        assert again.read_bytes() == b"id,f1\n1,0.5\n"
    # Hashed (and refused) under the shared lock, and once more under the exclusive one
    # before fetching; the fresh copy is not hashed again.
    assert (count(fetches), len(hashed)) == (2, 2)


def test_it_refuses_a_stored_file_whose_bytes_are_not_the_recorded_ones(cache, fetches):
    item = put("submissions/1/answer.csv", b"1,2,3\n")
    default_storage.delete(item.name)
    default_storage.save(item.name, ContentFile(b"1,2,4\n"))  # changed behind our back
    with (
        pytest.raises(StoredFileMismatch, match=r"answer\.csv has sha256 .* not the"),
        cached(item),
    ):
        pass
    # Nothing of it is left in the cache, not even a temporary file.
    assert [p.name for p in cache.iterdir() if p.name != ".locks"] == []


def test_a_cached_copy_changed_on_disk_is_refused_and_fetched_again(cache, fetches):
    item = put("inputs/features.csv", b"id,f1\n1,0.5\n")
    with cached(item) as path:
        pass
    path.chmod(0o644)
    path.write_bytes(b"id,f1\n1,9.9\n")  # a model or a disk error altered the cached copy
    with cached(item) as again:
        assert again.read_bytes() == b"id,f1\n1,0.5\n"
        assert stat.S_IMODE(again.stat().st_mode) == 0o444
    assert count(fetches) == 2


def test_it_evicts_the_least_recently_used_files_beyond_the_size_bound(cache, fetches, settings):
    settings.EVALUATION_CACHE_MAX_BYTES = 2500
    a, b, c = (put(f"blobs/{n}.bin", n.encode() * 1000) for n in "abc")
    for item in (a, b, a):  # a used again after b: b is now the least recently used
        with cached(item):
            pass
        time.sleep(0.02)
    with cached(c):
        pass
    kept = sorted(p.name.split("-", 1)[1] for p in cache.iterdir() if not p.name.startswith("."))
    assert kept == ["a.bin", "c.bin"]
    assert sum(p.stat().st_size for p in cache.iterdir() if p.is_file()) <= 2500
    with cached(b) as path:  # gone from the cache, not from storage
        assert path.read_bytes() == b"b" * 1000
    assert count(fetches) == 4


def test_a_file_in_use_is_not_evicted_until_its_user_is_done(cache, fetches, settings):
    settings.EVALUATION_CACHE_MAX_BYTES = 1500
    a, b = put("blobs/a.bin", b"a" * 1000), put("blobs/b.bin", b"b" * 1000)
    with cached(a) as held:
        with cached(b) as other:
            pass
        assert held.exists() and other.exists()  # over the bound; b was just used
        evict()
        # a is the least recently used, but in use: b goes instead.
        assert held.exists() and not other.exists()
    assert held.exists()


def _fetch_in_a_process(item: Stored, barrier, out: multiprocessing.Queue) -> None:
    barrier.wait()
    with cached(item) as path:
        out.put((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))


def test_worker_processes_fetching_one_file_at_once_fetch_it_once_and_all_read_it_whole(
    cache, fetches
):
    content = os.urandom(3 * 1024**2)
    item = put("inputs/big.bin", content)
    context = multiprocessing.get_context("fork")
    barrier, out = context.Barrier(6), context.Queue()
    procs = [
        context.Process(target=_fetch_in_a_process, args=(item, barrier, out)) for _ in range(6)
    ]
    for proc in procs:
        proc.start()
    seen = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert {sha for _path, sha in seen} == {item.sha256}
    assert len({path for path, _sha in seen}) == 1
    assert count(fetches) == 1
    assert [p.name for p in cache.iterdir() if p.name.startswith(".fetch-")] == []


def test_staged_links_a_cached_file_without_changing_its_mode(cache, fetches):
    item = put("annotations/truth.json", b'{"answer": 42}')
    with local_files(item, os.devnull) as (local, null), staged(local, null) as (linked, same):
        assert linked != local and linked.read_bytes() == b'{"answer": 42}'
        assert os.path.samefile(linked, local)  # a hard link, not a copy
        assert same == Path(os.devnull)
        assert stat.S_IMODE(local.stat().st_mode) == 0o444
    assert not linked.exists()


def test_a_file_without_a_recorded_sha256_is_fetched_unchecked_and_not_kept(cache, fetches):
    item = put("old/rows.csv", b"x\n")
    with cached(Stored(item.name)) as path:
        assert path.read_bytes() == b"x\n"
    assert not path.exists()


def test_a_model_gets_the_cached_features_as_a_read_only_link_and_its_own_copy_otherwise(
    cache, fetches, tmp_path
):
    from workers.code_runner import _place

    uid = 65533 if os.geteuid() == 0 else None
    item = put("inputs/features.csv", b"id,f1\n1,0.5\n")
    work = tmp_path / "work"
    work.mkdir()
    with cached(item) as local:
        features = _place(local, work / "features.csv", uid, share=True)
        # No copy per model where the model runs as a uid of its own (a root worker), which
        # cannot write or chmod a root-owned 0444 file; a non-root worker's model would own
        # it, so it gets a copy there.
        assert os.path.samefile(features, local) == (uid is not None)
        if uid is not None:
            assert stat.S_IMODE(features.stat().st_mode) == 0o444
            assert features.stat().st_uid == 0 != uid
        # The model file is the model's own copy, never a link.
        model = _place(local, work / "model.pkl", uid)
        assert not os.path.samefile(model, local)
    # A file that is not read-only for everyone (a participant's own path) is copied.
    private = tmp_path / "private.csv"
    private.write_bytes(b"id\n1\n")
    private.chmod(0o600)
    copied = _place(private, work / "features2.csv", uid, share=True)
    assert not os.path.samefile(copied, private)


def test_the_cache_s_size_is_looked_at_after_a_twentieth_of_the_bound_not_every_fetch(
    cache, fetches, settings, monkeypatch
):
    settings.EVALUATION_CACHE_MAX_BYTES = 20_000  # looked at every 1,000 bytes fetched
    monkeypatch.setattr(scripts, "_grown", 0)
    scans = []
    real = scripts.evict
    monkeypatch.setattr(scripts, "evict", lambda **kw: scans.append(kw) or real(**kw))
    small = [put(f"submissions/{n}.csv", b"x" * 100) for n in range(5)]
    for item in (*small, *small):  # the second round is all hits: nothing grows
        with cached(item):
            pass
    assert (count(fetches), len(scans)) == (5, 0)
    with cached(put("inputs/features.csv", b"f" * 600)) as big:
        pass
    assert len(scans) == 1 and scans[0]["keep"] == big


def test_evicted_files_take_their_lock_files_with_them(cache, fetches, settings):
    """One lock file per file ever cached would pile up (every submission is one)."""
    settings.EVALUATION_CACHE_MAX_BYTES = 1500
    a, b = put("blobs/a.bin", b"a" * 1000), put("blobs/b.bin", b"b" * 1000)
    with cached(a):
        pass
    time.sleep(0.02)
    with cached(b):
        pass
    (cache / ".locks" / f"{'0' * 64}-gone.bin").touch()  # a failed fetch's: no blob came
    evict()
    blobs = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    assert [name.split("-", 1)[1] for name in blobs] == ["b.bin"]
    assert sorted(p.name for p in (cache / ".locks").iterdir()) == blobs


def _churn(items: list[Stored], seed: int, out: multiprocessing.Queue) -> None:
    import random

    rng = random.Random(seed)
    bad = 0
    try:
        for _ in range(40):
            item = rng.choice(items)
            with cached(item) as path:
                evict()  # everyone evicts all the time: only files in use may stay
                if hashlib.sha256(path.read_bytes()).hexdigest() != item.sha256:
                    bad += 1
    except Exception as exc:  # noqa: BLE001 - a file evicted under its user, say
        out.put(repr(exc))
        return
    out.put(bad)


def test_processes_fetching_and_evicting_at_once_never_lose_a_file_in_use(cache, fetches, settings):
    settings.EVALUATION_CACHE_MAX_BYTES = 2 * 20_000
    items = [put(f"blobs/{n}.bin", os.urandom(20_000)) for n in range(6)]
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    procs = [context.Process(target=_churn, args=(items, seed, out)) for seed in range(4)]
    for proc in procs:
        proc.start()
    assert [out.get(timeout=120) for _ in procs] == [0, 0, 0, 0]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    evict()
    blobs = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
    assert sum((cache / name).stat().st_size for name in blobs) <= 2 * 20_000
    assert {p.name for p in (cache / ".locks").iterdir()} == blobs

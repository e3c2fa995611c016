"""Build the example challenge bundles into EvalAI-format zips.

    python -m starters.build OUT_DIR [STARTER ...]

For each starter folder this runs its generate.py into a staging folder (data/ and
annotations/ for the zip, sample submissions kept aside), adds the folder's own files
(challenge_config.yaml, templates/), a generated logo.png and evaluation_script.zip (the
evaluation_script/ package, its files at the root of that nested zip, as EvalAI-Starters'
run.sh makes it), and writes:

    OUT_DIR/<starter>.zip
    OUT_DIR/<starter>/sample_submission_<phase codename>.csv

The zips are byte-identical from one build to the next (sorted entries, fixed timestamps
and permissions), so they can be compared and cached.
"""

import argparse
import importlib.util
import os
import shutil
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import yaml

STARTERS_DIR = Path(__file__).resolve().parent
STARTERS: list[str] = ["tabular_classification", "numerai_regression", "numerai_tournament"]
# Built only when named (`python -m starters.build OUT numerai_parquet`): a million rows
# take seconds and tens of MB, which every test session building STARTERS need not pay.
LARGE_STARTERS: list[str] = ["numerai_parquet"]
CONFIG_NAME = "challenge_config.yaml"
SAMPLE_EXTENSION = {"file": "csv", "code": "pkl"}
# Starters whose file phases take another format than CSV.
SAMPLE_EXTENSION_OF = {"numerai_parquet": "parquet"}
EVALUATION_SCRIPT_DIR = "evaluation_script"
GENERATOR_NAME = "generate.py"
# Source files that are build tooling, not bundle content.
SKIPPED_NAMES = {GENERATOR_NAME, "__pycache__", ".DS_Store"}
# ZIP cannot store dates before 1980; any fixed date makes builds reproducible.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
LOGO_COLOURS = {
    "tabular_classification": (38, 110, 196),
    "numerai_regression": (24, 150, 96),
    "numerai_tournament": (150, 70, 24),
    "numerai_parquet": (110, 40, 160),
}


def build_starters(out_dir: Path, names: list[str] | None = None) -> list[Path]:
    """Build every starter (or those named) into out_dir; return the zip paths."""
    return [build_starter(name, out_dir) for name in (names or STARTERS)]


def build_starter(name: str, out_dir: Path) -> Path:
    if name not in STARTERS + LARGE_STARTERS:
        raise ValueError(
            f"Unknown starter {name!r}; the starters are {', '.join(STARTERS + LARGE_STARTERS)}."
        )
    source = STARTERS_DIR / name
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"starter-{name}-") as staging:
        bundle_dir, samples_dir = Path(staging) / "bundle", Path(staging) / "samples"
        _load_generator(source / GENERATOR_NAME).generate(bundle_dir, samples_dir)

        files = _read_tree(bundle_dir)
        for arcname, data in _read_tree(source).items():
            if arcname.split("/")[0] == EVALUATION_SCRIPT_DIR:
                continue
            if arcname in files:
                raise RuntimeError(f"{name}: {arcname} is both a source file and generated.")
            files[arcname] = data
        files["logo.png"] = _logo_png(LOGO_COLOURS.get(name, (90, 90, 90)))
        files["evaluation_script.zip"] = _zip_bytes(_read_tree(source / EVALUATION_SCRIPT_DIR))
        _check_references(name, yaml.safe_load(files[CONFIG_NAME]), files)

        zip_path = out_dir / f"{name}.zip"
        partial = zip_path.with_name(f".{zip_path.name}.partial")
        partial.write_bytes(_zip_bytes(files))
        os.replace(partial, zip_path)

        sample_dir = out_dir / name
        sample_dir.mkdir(exist_ok=True)
        for stale in sample_dir.glob("sample_submission_*.*"):
            stale.unlink()
        for sample in sorted(samples_dir.glob("sample_submission_*.*")):
            shutil.copyfile(sample, sample_dir / sample.name)
        # A tournament's rounds (live features and targets), for the host to open.
        shutil.rmtree(sample_dir / "rounds", ignore_errors=True)
        if (samples_dir / "rounds").is_dir():
            shutil.copytree(samples_dir / "rounds", sample_dir / "rounds")
    return zip_path


def starter_submission_types(name: str) -> dict[str, str]:
    """Phase codename -> "file" or "code" (whose sample is a model pickle)."""
    config = yaml.safe_load((STARTERS_DIR / name / CONFIG_NAME).read_text(encoding="utf-8"))
    return {
        phase["codename"]: phase.get("submission_type", "file")
        for phase in config["challenge_phases"]
    }


def starter_phases(name: str) -> dict[str, list[str]]:
    """Phase codename -> the codenames of its dataset splits, from the starter's config."""
    config = yaml.safe_load((STARTERS_DIR / name / CONFIG_NAME).read_text(encoding="utf-8"))
    phase_codenames = {phase["id"]: phase["codename"] for phase in config["challenge_phases"]}
    split_codenames = {split["id"]: split["codename"] for split in config["dataset_splits"]}
    phases: dict[str, list[str]] = {codename: [] for codename in phase_codenames.values()}
    for link in config["challenge_phase_splits"]:
        phases[phase_codenames[link["challenge_phase_id"]]].append(
            split_codenames[link["dataset_split_id"]]
        )
    return phases


def sample_submissions(out_dir: Path, names: list[str] | None = None) -> dict[str, dict[str, Path]]:
    """Starter -> phase codename -> its sample submission (written by build_starters): a CSV,
    or for a code phase a model pickle."""
    return {
        name: {
            phase: Path(out_dir) / name / f"sample_submission_{phase}.{_extension(name, kind)}"
            for phase, kind in starter_submission_types(name).items()
        }
        for name in names or STARTERS
    }


def _extension(name: str, kind: str) -> str:
    if kind == "file" and name in SAMPLE_EXTENSION_OF:
        return SAMPLE_EXTENSION_OF[name]
    return SAMPLE_EXTENSION[kind]


def _load_generator(path: Path):
    spec = importlib.util.spec_from_file_location(f"_starter_{path.parent.name}_generate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_tree(root: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() or SKIPPED_NAMES.intersection(relative.parts) or path.suffix == ".pyc":
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    with tempfile.SpooledTemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for arcname in sorted(files):
                info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # Unix, so that external_attr means file mode bits
                info.external_attr = 0o644 << 16
                archive.writestr(info, files[arcname], compresslevel=9)
        buffer.seek(0)
        return buffer.read()


def _check_references(name: str, config: dict, files: dict[str, bytes]) -> None:
    # Catch a renamed template or annotation file here rather than at upload time.
    referenced = [
        config[key]
        for key in (
            "description",
            "evaluation_details",
            "terms_and_conditions",
            "submission_guidelines",
            "image",
            "evaluation_script",
        )
        if config.get(key)
    ]
    for phase in config["challenge_phases"]:
        referenced += [phase["description"], phase["test_annotation_file"]]
        referenced += [phase[k] for k in ("test_input_file", "test_extra_file") if phase.get(k)]
        referenced += phase.get("public_data", [])
    missing = sorted(set(referenced) - set(files))
    if missing:
        raise RuntimeError(f"{name}: {CONFIG_NAME} names files the bundle lacks: {missing}")


def _logo_png(colour: tuple[int, int, int], size: int = 32) -> bytes:
    """A small striped RGB PNG, made without an imaging library."""
    white = bytes((255, 255, 255))
    rows = b"".join(
        b"\x00" + b"".join(bytes(colour) if (x + y) % 8 < 5 else white for x in range(size))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m starters.build", description="Build the example challenge zips."
    )
    parser.add_argument("out_dir", type=Path, help="folder for the zips and sample submissions")
    parser.add_argument(
        "starters",
        nargs="*",
        metavar="STARTER",
        help=f"default: all of {', '.join(STARTERS)}; also {', '.join(LARGE_STARTERS)}",
    )
    args = parser.parse_args(argv)
    known = STARTERS + LARGE_STARTERS
    unknown = sorted(set(args.starters) - set(known))
    if unknown:
        parser.error(f"unknown starter(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    started = time.perf_counter()
    for path in build_starters(args.out_dir, args.starters or None):
        print(path)
    print(f"built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Challenge bundle loader: zip -> validated challenge spec.

Pure: no ORM, no Django imports, nothing written to disk. The service layer
(`challenges.services.bundles`) turns a `Bundle` into rows and stored files.

The top of the package: `load_bundle` and the `Bundle` it returns. The work is done
below it by `archive` (hostile-zip checks, capped reads), `yaml_reader` (safe parsing,
positions), `config` (EvalAI's keys and defaults, with `phases`, `values` and `script`,
the evaluation package); the types they share are in `spec`.

Leniency rule (DESIGN section 4): a zip EvalAI accepts loads here; a problem that
does not stop the challenge from working is a warning, not a refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from django.utils.translation import gettext as _

from challenges.bundle import yaml_reader
from challenges.bundle.archive import Folder, MemberError, SafeZip, open_archive
from challenges.bundle.codalab import CONFIG_NAMES, build_codalab_spec, is_codalab
from challenges.bundle.config import build_spec
from challenges.bundle.names import is_junk, normalise_relative, show, sorted_names
from challenges.bundle.spec import BundleError, ChallengeSpec, Limits, Problem


class Bundle:
    """A validated bundle. Keeps the zip open so the service can stream members out.

    Use as a context manager, or call close().
    """

    spec: ChallengeSpec
    warnings: list[Problem]

    def __init__(
        self,
        spec: ChallengeSpec,
        warnings: list[Problem],
        *,
        archive: SafeZip,
        base: str,
        limits: Limits,
    ):
        self.spec = spec
        self.warnings = warnings
        self._archive: SafeZip | None = archive
        self._base = base  # the config's folder inside the zip: "" or "top/"
        self._limits = limits

    def _member(self, path: str) -> str:
        if self._archive is None:
            raise ValueError("The bundle is closed.")
        rel = normalise_relative(path)
        if rel is None:
            raise ValueError(f"{path!r} is not a path inside the bundle.")
        name = self._base + rel
        if not self._archive.is_file(name):
            raise FileNotFoundError(f"{path!r} is not in the bundle.")
        return name

    def open(self, path: str, *, max_bytes: int | None = None) -> IO[bytes]:
        """Open a file named by the config (path relative to the config folder).

        A binary stream that raises BundleError instead of reading past the member's
        declared size, `max_bytes` or `Limits.max_member_bytes`, or on corrupt data.
        """
        name = self._member(path)
        cap = (
            self._limits.max_member_bytes
            if max_bytes is None
            else min(max_bytes, self._limits.max_member_bytes)
        )
        size = self._archive.size(name)  # type: ignore[union-attr]
        if size > cap:
            raise BundleError(
                [
                    Problem(
                        _("It is %(size)s bytes, over the %(cap)s-byte limit.")
                        % {"size": f"{size:,}", "cap": f"{cap:,}"},
                        file=name,
                    )
                ]
            )
        return self._archive.open(name, cap)  # type: ignore[union-attr]

    def size(self, path: str) -> int:
        """Uncompressed size in bytes, as the zip declares it."""
        return self._archive.size(self._member(path))  # type: ignore[union-attr]

    def exists(self, path: str) -> bool:
        try:
            self._member(path)
        except (ValueError, FileNotFoundError):
            return False
        return True

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_bundle(
    source: str | Path | IO[bytes],
    *,
    limits: Limits | None = None,
    images: dict[str, str] | None = None,
    default_image: str | None = None,
) -> Bundle:
    """Validate a challenge zip. Raises BundleError listing every problem at once.

    `source` is a path or a seekable binary file (left open; the zip is read from it
    until the Bundle is closed). Hostile archives are refused from their headers,
    before any member is read. `images` and `default_image`: for CodaLab/Codabench
    bundles, which interpreter stands in for a docker_image (challenges.bundle.codalab).
    """
    limits = limits or Limits()
    problems: list[Problem] = []
    archive = open_archive(source, limits=limits, problems=problems)
    if archive is None:
        raise BundleError(problems)
    try:
        loaded = _load(archive, limits, problems, images or {}, default_image)
    except BaseException:
        archive.close()
        raise
    if loaded is None or any(p.severity == "error" for p in problems):
        archive.close()
        raise BundleError(problems)
    spec, base = loaded
    return Bundle(
        spec,
        [p for p in problems if p.severity == "warning"],
        archive=archive,
        base=base,
        limits=limits,
    )


def _load(
    archive: SafeZip,
    limits: Limits,
    problems: list[Problem],
    images: dict[str, str],
    default_image: str | None,
) -> tuple[ChallengeSpec, str] | None:
    located = _locate_config(archive, problems)
    if located is None:
        return None
    config_name, base, other_yaml = located
    where_located = len(problems)

    info_size = archive.size(config_name)
    if info_size > limits.max_config_bytes:
        problems.append(
            Problem(
                _("The config is %(size)s bytes; the limit is %(limit)s.")
                % {"size": f"{info_size:,}", "limit": f"{limits.max_config_bytes:,}"},
                file=config_name,
            )
        )
        return None
    try:
        raw = archive.read(config_name, limits.max_config_bytes)
        parsed = yaml_reader.parse(
            yaml_reader.decode(raw),
            max_nodes=limits.max_yaml_nodes,
            max_depth=limits.max_yaml_depth,
        )
    except MemberError as exc:
        problems.append(Problem(str(exc), file=config_name))
        return None
    except yaml_reader.YamlProblem as exc:
        problems.append(Problem(exc.message, file=config_name, line=exc.line, column=exc.column))
        return None

    folder = Folder(archive, base)
    if is_codalab(parsed.data):
        # CodaLab/Codabench: metadata.yaml files inside programs are theirs, not stray configs.
        spec = build_codalab_spec(
            parsed,
            config_file=config_name,
            folder=folder,
            limits=limits,
            problems=problems,
            images=images,
            **({"default_image": default_image} if default_image else {}),
        )
        return (spec, base) if spec is not None else None
    spec = build_spec(
        parsed, config_file=config_name, folder=folder, limits=limits, problems=problems
    )

    # YAML inside a script folder is the script's business, not a stray config.
    script_dir = ""
    if spec is not None and spec.evaluation_script and spec.evaluation_script.source.endswith("/"):
        script_dir = base + spec.evaluation_script.source
    problems[where_located:where_located] = [
        Problem(
            _("Ignored: only %(config)s is read as the challenge config.")
            % {"config": show(config_name)},
            file=name,
            severity="warning",
        )
        for name in other_yaml
        if not (script_dir and name.startswith(script_dir))
    ]
    return (spec, base) if spec is not None else None


def _is_yaml(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def _locate_config(archive: SafeZip, problems: list[Problem]) -> tuple[str, str, list[str]] | None:
    """(config path, its folder, other YAML files) or None with an error appended.

    The config is the YAML file at the root, or in the single top folder when
    everything sits in one. Failing both, a lone YAML file anywhere is taken (older
    EvalAI versions did) with a warning.
    """
    names = [n for n in archive.files if not is_junk(n)]
    yaml_files = [n for n in names if _is_yaml(n)]
    base = ""
    candidates = [n for n in yaml_files if "/" not in n]
    if not candidates:
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) == 1 and all("/" in n for n in names):
            base = tops.pop() + "/"
            candidates = [n for n in yaml_files if n.startswith(base) and "/" not in n[len(base) :]]
    if not candidates and len(yaml_files) == 1:
        config = yaml_files[0]
        base = config.rsplit("/", 1)[0] + "/"
        problems.append(
            Problem(
                _(
                    "The config is not at the top of the zip; it is read from %(config)s and its "
                    "paths from %(folder)s."
                )
                % {"config": show(config), "folder": show(base)},
                file=config,
                severity="warning",
            )
        )
        return config, base, []
    if not candidates:
        message = _(
            "No challenge config: put challenge_config.yaml at the root of the zip (or in its "
            "single top folder), next to evaluation_script.zip and the files it names."
        )
        if yaml_files:
            message += " " + _("Found %(names)s, but not at the top level.") % {
                "names": sorted_names(yaml_files)
            }
        problems.append(Problem(message))
        return None
    if len(candidates) == 1:
        config = candidates[0]
    else:
        preferred = [
            c
            for name in ("challenge_config.yaml", "challenge_config.yml", *CONFIG_NAMES)
            for c in candidates
            if c.rsplit("/", 1)[-1] == name
        ]
        if not preferred:
            problems.append(
                Problem(
                    _(
                        "Several YAML files at the top of the zip (%(names)s) and none is named "
                        "challenge_config.yaml: rename the challenge config to "
                        "challenge_config.yaml or remove the others."
                    )
                    % {"names": sorted_names(candidates)}
                )
            )
            return None
        config = preferred[0]
        problems.append(
            Problem(
                _(
                    "Several YAML files next to the config (%(names)s); %(config)s is used and "
                    "the others are ignored."
                )
                % {
                    "names": sorted_names(c for c in candidates if c != config),
                    "config": show(config),
                },
                file=config,
                severity="warning",
            )
        )
        return config, base, [n for n in yaml_files if n not in candidates and n.startswith(base)]
    return config, base, [n for n in yaml_files if n != config and n.startswith(base)]

"""YAML for the bundle loader: decoding, safe parsing under limits, key positions.

Only PyYAML's safe machinery is used (compose, then SafeConstructor). Before any
Python object is built, the composed node graph is measured with aliases expanded,
so a "billion laughs" document is refused while it is still a few hundred nodes.
Part of `challenges.bundle`.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.utils.translation import gettext as _
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml is ~10x faster, but its composer recurses in C and crashes the process on
# absurd nesting (`[[[[...`); such input goes to the pure-Python loader, which raises
# RecursionError instead.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
_FAST_LOADER_MAX_NESTING = 1000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_KEY_NAME_LIMIT = 100
_POSITION_DEPTH = (
    8  # the config's deepest checked key: leaderboard[0].schema.metadata.X.description
)


class YamlProblem(Exception):
    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class ParsedYaml:
    data: Any
    positions: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # key path -> (line, column)
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)  # repeated keys

    def position(self, path: str) -> tuple[int | None, int | None]:
        """Line and column of `path`, or of its nearest ancestor that is written down."""
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return None, None
            path = parent_path(path)


def parent_path(path: str) -> str:
    if path.endswith("]") and "[" in path:
        return path[: path.rindex("[")]
    dot = path.rfind(".")
    return path[:dot] if dot >= 0 else ""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16/32 with a BOM. YamlProblem otherwise."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            if encoding == "utf-8":
                return _decode_utf8(data[len(bom) :], offset=len(bom))
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise YamlProblem(
                    _(
                        "The file starts with a %(encoding)s byte-order mark but is not valid %(encoding)s (byte offset %(start)s). Save it as UTF-8."
                    )
                    % {"encoding": encoding.upper(), "start": exc.start}
                ) from exc
    return _decode_utf8(data, offset=0)


def _decode_utf8(data: bytes, *, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        hint = ""
        if b"\x00" in data[:64]:
            hint = " " + _("It looks like UTF-16 without a byte-order mark.")
        raise YamlProblem(
            _(
                "The file is not UTF-8: byte 0x%(byte)s at byte offset %(offset)s (line %(line)s, column %(column)s) is not valid UTF-8.%(hint)s Save the file as UTF-8."
            )
            % {
                "byte": format(data[start], "02X"),
                "offset": start + offset,
                "line": line,
                "column": column,
                "hint": hint,
            },
            line,
            column,
        ) from exc


def parse(text: str, *, max_nodes: int, max_depth: int) -> ParsedYaml:
    loader_class: Any = yaml.SafeLoader
    if _FAST_LOADER is not None and _nesting_bound(text) <= _FAST_LOADER_MAX_NESTING:
        loader_class = _FAST_LOADER
    try:
        loader = loader_class(text)
    except yaml.YAMLError as exc:
        raise _syntax_problem(exc, text) from exc
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax_problem(exc, text) from exc
    except RecursionError as exc:
        raise YamlProblem(_("The YAML is nested too deeply to be read.")) from exc
    finally:
        loader.dispose()
    if node is None:
        raise YamlProblem(
            _("The config file is empty. Start from EvalAI-Starters' challenge_config.yaml.")
        )
    _measure(node, max_nodes=max_nodes, max_depth=max_depth)
    positions, duplicates = _positions(node)
    try:
        data = _Constructor().construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_problem(exc, text) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise YamlProblem(
            _("A value in the YAML could not be read: %(exc)s.") % {"exc": exc}
        ) from exc
    return ParsedYaml(data, positions, duplicates)


def _nesting_bound(text: str) -> int:
    """An upper bound on how deep the document can nest (flow brackets, `- - -` chains)."""
    per_line = max((line.count("-") + line.count("?") for line in text.splitlines()), default=0)
    opened = text.count("[") + text.count("{")
    if opened + per_line <= _FAST_LOADER_MAX_NESTING:
        return opened + per_line
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if match.group() in "[{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest + per_line


def _syntax_problem(exc: yaml.YAMLError, text: str) -> YamlProblem:
    if isinstance(exc, yaml.reader.ReaderError):
        position = max(0, min(exc.position, len(text)))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        return YamlProblem(
            _("YAML syntax error: character #x%(character)s is not allowed in YAML (%(reason)s).")
            % {"character": format(exc.character, "04X"), "reason": exc.reason},
            line,
            column,
        )
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
    if isinstance(exc, yaml.composer.ComposerError) and "single document" in str(exc.context):
        return YamlProblem(
            _("The file holds more than one YAML document (a second '---'); keep only one."),
            *((mark.line + 1, mark.column + 1) if mark else ()),
        )
    # PyYAML's own words (problem, context) stay as it wrote them: they quote the YAML.
    if isinstance(exc, ConstructorError):
        message = _("YAML error: %(problem)s") % {"problem": problem}
    else:
        message = _("YAML syntax error: %(problem)s") % {"problem": problem}
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark is not mark:
        message += " " + _("(%(context)s that starts at line %(line)s, column %(column)s)") % {
            "context": context,
            "line": context_mark.line + 1,
            "column": context_mark.column + 1,
        }
    elif context:
        message += f" ({context})"
    message += "."
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        message += " " + _("YAML does not allow tabs for indentation: use spaces.")
    if mark is None:
        return YamlProblem(message)
    return YamlProblem(message, mark.line + 1, mark.column + 1)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _measure(root: Node, *, max_nodes: int, max_depth: int) -> None:
    """Refuse alias bombs, recursive aliases and deep nesting, counting with aliases expanded.

    Iterative post-order walk over the node graph, memoised per node, so a shared
    subtree is measured once however often it is referenced.
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded node count, depth)
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in done:
            continue
        children = _children(node)
        if not children_done:
            on_path.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in on_path:
                    raise YamlProblem(
                        _(
                            "The YAML contains an alias that refers to itself (a recursive structure); that cannot be loaded."
                        ),
                        child.start_mark.line + 1,
                        child.start_mark.column + 1,
                    )
                if id(child) not in done:
                    stack.append((child, False))
            continue
        count = 1 + sum(done[id(c)][0] for c in children)
        depth = 1 + max((done[id(c)][1] for c in children), default=0)
        done[key] = (count, depth)
        on_path.discard(key)
        if count > max_nodes:
            raise YamlProblem(
                _(
                    "The YAML holds more than %(max_nodes)s values, counting every expansion of its aliases (*name); far more than a challenge config needs, so it is refused as an alias bomb."
                )
                % {"max_nodes": format(max_nodes, ",")},
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )
        if depth > max_depth:
            raise YamlProblem(
                _("The YAML is nested more than %(max_depth)s levels deep.")
                % {"max_depth": max_depth},
                node.start_mark.line + 1,
                node.start_mark.column + 1,
            )


def key_name(key: object) -> str:
    """A mapping key as it appears in key paths; absurdly long keys are shortened."""
    name = str(key)
    return name if len(name) <= _KEY_NAME_LIMIT else name[:_KEY_NAME_LIMIT] + "..."


def _positions(root: Node) -> tuple[dict[str, tuple[int, int]], list[tuple[str, int, int]]]:
    """Key path -> position, down to the depth the config checks reach.

    Each node's children are walked once: a subtree reached again through an alias
    is located at the alias, so the map stays as small as the text.
    """
    positions: dict[str, tuple[int, int]] = {}
    duplicates: dict[tuple[int, int], str] = {}
    walked: set[int] = set()
    stack: list[tuple[Node, str, int]] = [(root, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        # A mapping entry is located at its key (set below), a list item at the item.
        positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if id(node) in walked or depth >= _POSITION_DEPTH:
            continue
        walked.add(id(node))
        children: list[tuple[Node, str, int]] = []
        if isinstance(node, MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                name = key_name(key_node.value) if isinstance(key_node, ScalarNode) else "?"
                child = f"{path}.{name}" if path else name
                mark = key_node.start_mark
                positions.setdefault(child, (mark.line + 1, mark.column + 1))
                if isinstance(key_node, ScalarNode):
                    if name in seen:
                        duplicates.setdefault((mark.line + 1, mark.column + 1), child)
                    seen.add(name)
                children.append((value_node, child, depth + 1))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                children.append((item, f"{path}[{index}]", depth + 1))
        # In document order, so an anchor is walked where it is written, not at an alias.
        stack.extend(reversed(children))
    return positions, [(path, line, col) for (line, col), path in sorted(duplicates.items())]


class _Constructor(SafeConstructor):
    """SafeConstructor that reports an impossible date (2019-02-30) with its position."""

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(
                None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark
            ) from exc


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)

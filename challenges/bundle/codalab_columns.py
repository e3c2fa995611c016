"""CodaLab/Codabench leaderboards and columns -> one LeaderboardSpec and the runtime's
column list (key, label, index, sort, precision, computation, computation_indexes).

A part of challenges.bundle.codalab's translator (its `_Translator` mixes this in: the
same `data`, `v2`, `error` and `warning`).
"""

from __future__ import annotations

from challenges.bundle.codalab_files import _
from challenges.bundle.spec import LeaderboardSpec
from challenges.bundle.values import to_int


class ColumnReader:
    data: dict
    v2: bool
    first_column: dict

    def error(self, key: str, message: str, **kw) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def warning(self, key: str, message: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _leaderboards(self) -> tuple[list[LeaderboardSpec], list[dict]]:
        """Our leaderboards, and the first one's columns for the runtime (key, label, index,
        computation, computation_indexes)."""
        columns: list[dict] = []
        if self.v2:
            boards = self.data.get("leaderboards") or []
            if not isinstance(boards, list) or not boards:
                self.error("leaderboards", _("The competition has no leaderboard."))
                return [], []
            if len(boards) > 1:
                self.warning("leaderboards", _("Only the first leaderboard is shown here."))
            board = boards[0] if isinstance(boards[0], dict) else {}
            for i, col in enumerate(board.get("columns") or []):
                if not isinstance(col, dict) or not col.get("key"):
                    self.error(f"leaderboards[0].columns[{i}]", _("A column needs a key."))
                    continue
                columns.append(
                    {
                        "key": str(col["key"]),
                        "label": str(col.get("title") or col["key"]),
                        "index": to_int(col.get("index")) if col.get("index") is not None else i,
                        "ascending": str(col.get("sorting", "desc")).lower() == "asc",
                        "precision": to_int(col.get("precision")),
                        "computation": col.get("computation") or None,
                        "computation_indexes": [
                            to_int(x) for x in col.get("computation_indexes") or []
                        ],
                    }
                )
        else:
            board_map = (self.data.get("leaderboard") or {}).get("leaderboards") or {}
            cols = (self.data.get("leaderboard") or {}).get("columns") or {}
            rank_of = {
                str((b or {}).get("label", k)): to_int((b or {}).get("rank")) or 0
                for k, b in board_map.items()
            }
            if len(board_map) > 1:
                self.warning(
                    "leaderboard.leaderboards",
                    _("The leaderboards are shown as one, their columns side by side."),
                )
            items = []
            for key, col in cols.items() if isinstance(cols, dict) else []:
                col = col if isinstance(col, dict) else {}
                board = col.get("leaderboard") if isinstance(col.get("leaderboard"), dict) else {}
                items.append(
                    (
                        rank_of.get(str(board.get("label")), 0),
                        to_int(col.get("rank")) or 0,
                        key,
                        col,
                    )
                )
            for i, (_board, _rank, key, col) in enumerate(sorted(items, key=lambda t: t[:2])):
                fmt = str(col.get("numeric_format") or "")
                columns.append(
                    {
                        "key": str(key),
                        "label": str(col.get("label") or key),
                        "index": i,
                        "ascending": str(col.get("sort", "desc")).lower() == "asc",
                        "precision": to_int(fmt) if fmt.isdigit() else None,
                        "computation": col.get("computation") or None,
                        "computation_indexes": [],
                    }
                )
        if not columns:
            self.error(
                "leaderboards" if self.v2 else "leaderboard", _("The leaderboard has no column.")
            )
            return [], []
        for column in columns:
            if column["computation"] and column["computation"] not in ("avg", "sum", "min", "max"):
                self.error(
                    "leaderboards",
                    _("Column %(key)s: computation %(how)r is not one of avg, sum, min, max.")
                    % {"key": column["key"], "how": column["computation"]},
                )
        labels = list(dict.fromkeys(c["label"] for c in columns))
        first = min(columns, key=lambda c: c["index"] if c["index"] is not None else 0)
        board = LeaderboardSpec(
            id=1,
            labels=labels,
            default_order_by=first["label"],
            metadata={c["label"]: {"sort_ascending": True} for c in columns if c["ascending"]},
        )
        board.schema = {
            "labels": labels,
            "default_order_by": first["label"],
            "metadata": board.metadata,
        }
        self.first_column = first
        return [board], columns

    # -- phases -----------------------------------------------------------------------

"""Scenario results: printed at the end of every run, kept as JSON under .cache/chaos/, and
written into docs/reliability.md only when CHAOS_REPORT=1 (``make chaos``), so that the doc
always shows the last full run and ``make test`` never touches it.

The doc holds two generated regions between markers: one table row per scenario and one
block of per-round numbers per scenario. A run replaces the rows and blocks of the
scenarios it ran and keeps the others."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.chaos import modes
from tests.chaos.infra import ROOT
from tests.chaos.workload import ACKED, SPOOLED, History

DOC = ROOT / "docs/reliability.md"
CACHE = ROOT / ".cache/chaos"
TABLE_BEGIN, TABLE_END = "<!-- chaos:results:begin -->", "<!-- chaos:results:end -->"
DETAILS_BEGIN, DETAILS_END = "<!-- chaos:details:begin -->", "<!-- chaos:details:end -->"
HEADER = (
    "| scenario | mode | events | acked | spooled | lost | duplicates | redelivered "
    "| order violations | time | result | run |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
)
BLOCK = re.compile(r"<!-- scenario:(\S+) -->\n")

#: Results of this session, for the terminal summary.
SESSION: list[ScenarioResult] = []


@dataclass
class ScenarioResult:
    #: Names the JSON file and the block of rounds: "1-broker-kill", ...
    scenario_id: str
    #: Starts with the scenario's number ("1. broker SIGKILL + restart"): the rows sort by it.
    title: str
    events: int = 0
    acked: int = 0
    spooled: int = 0
    #: Acked or spooled events missing from the topic, plus stored events no handler saw.
    lost: int = 0
    #: Extra stored copies of an event in the topic.
    duplicates: int = 0
    #: Extra deliveries to handlers (at-least-once redeliveries); None: no consumer.
    redelivered: int | None = None
    order_violations: int = 0
    seconds: float = 0.0
    passed: bool = False
    failure: str = ""
    rounds: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mode: str = modes.MODE
    run_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M"))

    def published(self, history: History) -> None:
        """What the publishers did, from their own history: the row of a scenario that fails
        before the checker ran still says how much it published."""
        outcomes = history.outcomes()
        self.events, self.acked, self.spooled = (
            len(history.final()),
            outcomes[ACKED],
            outcomes[SPOOLED],
        )

    def row(self) -> str:
        redelivered = "-" if self.redelivered is None else f"{self.redelivered:,}"
        result = "pass" if self.passed else "**FAIL**"
        return (
            f"| {self.title} | {self.mode} | {self.events:,} | {self.acked:,} | "
            f"{self.spooled:,} | {self.lost:,} | {self.duplicates:,} | {redelivered} | "
            f"{self.order_violations:,} | {self.seconds:.1f} s | {result} | {self.run_at} |"
        )

    def block(self) -> str:
        lines = [f"<!-- scenario:{self.scenario_id} -->", f"#### {self.title} ({self.mode})", ""]
        lines += [f"- {r}" for r in self.rounds]
        lines += [f"- {n}" for n in self.notes]
        if self.failure:
            lines.append(f"- failed: {self.failure}")
        return "\n".join(lines) + "\n"


def median_line(label: str, values: list[float], unit: str = "", digits: int = 1) -> str:
    if not values:
        return f"{label}: no rounds"
    rounds = ", ".join(f"{v:.{digits}f}{unit}" for v in values)
    return f"{label} by round: {rounds} (median {statistics.median(values):.{digits}f}{unit})"


def save(result: ScenarioResult) -> None:
    SESSION.append(result)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"{result.scenario_id}-{result.mode}.json").write_text(
        json.dumps(asdict(result), indent=2) + "\n"
    )
    if modes.REPORT:
        update_doc(DOC, result)


def update_doc(doc: Path, result: ScenarioResult) -> None:
    text = doc.read_text()
    rows = _rows(_between(text, TABLE_BEGIN, TABLE_END))
    rows[result.title] = result.row()
    table = HEADER + "\n" + "\n".join(rows[k] for k in sorted(rows)) + "\n"
    blocks = _blocks(_between(text, DETAILS_BEGIN, DETAILS_END))
    blocks[result.scenario_id] = result.block()
    details = "\n".join(blocks[k] for k in sorted(blocks))
    text = _replace(text, TABLE_BEGIN, TABLE_END, table)
    text = _replace(text, DETAILS_BEGIN, DETAILS_END, details)
    doc.write_text(text)


def _between(text: str, begin: str, end: str) -> str:
    try:
        start = text.index(begin) + len(begin)
        return text[start : text.index(end, start)]
    except ValueError:
        raise AssertionError(f"{DOC.name} lost its {begin} ... {end} markers") from None


def _replace(text: str, begin: str, end: str, body: str) -> str:
    start = text.index(begin) + len(begin)
    return text[:start] + "\n" + body + text[text.index(end, start) :]


def _rows(table: str) -> dict[str, str]:
    """Existing rows by title (titles start with the scenario's number, so they sort)."""
    rows: dict[str, str] = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| scenario"):
            rows[line.split("|")[1].strip()] = line
    return rows


def _blocks(details: str) -> dict[str, str]:
    parts = BLOCK.split(details)
    # parts: [before, id1, body1, id2, body2, ...]
    return {
        parts[i]: f"<!-- scenario:{parts[i]} -->\n{parts[i + 1].rstrip()}\n"
        for i in range(1, len(parts) - 1, 2)
    }


@contextmanager
def recording(result: ScenarioResult) -> Iterator[ScenarioResult]:
    """Times the scenario and saves its result, also when it fails: a failed run's numbers
    are the ones worth reading."""
    started = time.monotonic()
    try:
        yield result
        result.passed = True
    except BaseException as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        result.failure = f"{type(exc).__name__}: {first_line[:400]}"
        raise
    finally:
        result.seconds = time.monotonic() - started
        save(result)

"""What an ingest did, for the CLI, the dashboard and the ingest log."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestReport:
    """Counts of one ingest. ``n_duplicates`` counts rows already present (in the store or
    earlier in the same batch); ``n_rejected`` rows failed validation (only with skip)."""

    kind: str
    sources: list[str]
    n_rows: int = 0
    n_source_rows: int | None = None  # rows of the files when they differ from n_rows (a
    # file of sequences: one row per session, n_rows its events)
    n_added: int = 0
    n_duplicates: int = 0
    n_rejected: int = 0
    n_sessions_touched: int = 0
    ingest_id: int | None = None
    notes: list[str] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = "events" if self.kind == "events" else "labels"
        read = (f"{self.n_rows:,} rows" if self.n_source_rows is None
                else f"{self.n_source_rows:,} rows ({self.n_rows:,} events)")
        parts = [
            f"Read {read} from {len(self.sources)} source(s): "
            f"added {self.n_added:,} {what}, skipped {self.n_duplicates:,} already present"
        ]
        if self.n_rejected:
            parts.append(f", rejected {self.n_rejected:,} bad rows")
        if self.kind == "events":
            parts.append(f"; {self.n_sessions_touched:,} sessions updated")
        lines = ["".join(parts) + "."]
        lines += [f"Note: {n}" for n in self.notes]
        lines += [f"Rejected rows with reasons: {p}" for p in self.rejected_files]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

"""Every nightly result, kept in SQL: SQLite by default, PostgreSQL for a fleet, through one URL.

Three tables:
- runs:    one row per nightly (when, git commit, L4T, TensorRT, power mode, host, exit code);
- results: one row per engine and batch size in a run (ok or failed, with the identity of what
           was measured: ONNX / recipe / engine hashes, TensorRT and L4T versions, power mode);
- metrics: (result, name, value) rows, so a new metric needs no schema change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import PipelineError

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_utc", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_utc", sa.DateTime(timezone=True)),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("l4t", sa.String(32)),
    sa.Column("trt_version", sa.String(32)),
    sa.Column("power_mode", sa.String(64)),
    sa.Column("host", sa.String(128)),
    sa.Column("matrix", sa.String(512)),
    sa.Column("exit_code", sa.Integer),
)

results = sa.Table(
    "results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("engine", sa.String(256), nullable=False, index=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("precision", sa.String(16), nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("onnx_sha256", sa.String(64)),
    sa.Column("recipe_sha256", sa.String(64)),
    sa.Column("engine_sha256", sa.String(64)),
    sa.Column("trt_version", sa.String(32)),
    sa.Column("l4t", sa.String(32)),
    sa.Column("power_mode", sa.String(64)),
    sa.Column("details", sa.Text),
)

metrics = sa.Table(
    "metrics", metadata,
    sa.Column("result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

IDENTITY_FIELDS = ("onnx_sha256", "recipe_sha256", "engine_sha256", "trt_version", "l4t", "power_mode")


def engine_key(model: str, precision: str, batch: int) -> str:
    return f"{model}/{precision}/b{batch}"


@dataclass
class ResultRecord:
    """One engine at one batch size in one nightly: what was measured and under what identity."""

    model: str
    precision: str
    batch: int
    status: str                       # ok | failed
    error: str | None = None
    identity: dict[str, str | None] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        return engine_key(self.model, self.precision, self.batch)


@dataclass
class StoredResult(ResultRecord):
    id: int = 0
    run_id: int = 0
    started_utc: datetime | None = None
    git_commit: str | None = None


def _utc(dt: datetime | None) -> datetime | None:
    # SQLite hands DateTime back naive; everything stored is UTC.
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


class History:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as e:
            raise PipelineError(f"history URL {url!r} is not a database URL ({e})") from e
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(parsed, future=True)
            metadata.create_all(self.engine)
        except (sa.exc.SQLAlchemyError, ModuleNotFoundError) as e:
            raise PipelineError(f"history {parsed.render_as_string(hide_password=True)}: {str(e).splitlines()[0]}") from e

    def start_run(self, started_utc: datetime | None = None, **meta: Any) -> int:
        row = {"started_utc": started_utc or datetime.now(timezone.utc), **meta}
        with self.engine.begin() as conn:
            return int(conn.execute(runs.insert().values(**row)).inserted_primary_key[0])

    def finish_run(self, run_id: int, exit_code: int, finished_utc: datetime | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                runs.update().where(runs.c.id == run_id).values(
                    exit_code=exit_code, finished_utc=finished_utc or datetime.now(timezone.utc)
                )
            )

    def add_result(self, run_id: int, record: ResultRecord) -> int:
        identity = {k: record.identity.get(k) for k in IDENTITY_FIELDS}
        with self.engine.begin() as conn:
            result_id = int(conn.execute(results.insert().values(
                run_id=run_id, engine=record.engine, model=record.model, precision=record.precision,
                batch=record.batch, status=record.status, error=record.error,
                details=json.dumps(record.details, default=str), **identity,
            )).inserted_primary_key[0])
            rows = [{"result_id": result_id, "name": k, "value": float(v)} for k, v in record.metrics.items()
                    if v is not None]
            if rows:
                conn.execute(metrics.insert(), rows)
        return result_id

    def _load(self, where: Any, order_desc: bool = True, limit: int | None = None) -> list[StoredResult]:
        query = (
            sa.select(results, runs.c.started_utc, runs.c.git_commit)
            .join(runs, runs.c.id == results.c.run_id)
            .where(where)
            .order_by(runs.c.started_utc.desc() if order_desc else runs.c.started_utc, results.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
            ids = [r["id"] for r in rows]
            values: dict[int, dict[str, float]] = {i: {} for i in ids}
            if ids:
                for m in conn.execute(sa.select(metrics).where(metrics.c.result_id.in_(ids))).mappings():
                    values[m["result_id"]][m["name"]] = m["value"]
        return [
            StoredResult(
                model=r["model"], precision=r["precision"], batch=r["batch"], status=r["status"], error=r["error"],
                identity={k: r[k] for k in IDENTITY_FIELDS}, metrics=values[r["id"]],
                details=json.loads(r["details"]) if r["details"] else {},
                id=r["id"], run_id=r["run_id"], started_utc=_utc(r["started_utc"]), git_commit=r["git_commit"],
            )
            for r in rows
        ]

    def good_results(self, engine: str, before_run_id: int, limit: int) -> list[StoredResult]:
        """The last `limit` successful results of an engine from runs before this one, newest first."""
        return self._load(
            sa.and_(results.c.engine == engine, results.c.status == "ok", results.c.run_id < before_run_id),
            limit=limit,
        )

    def run_results(self, run_id: int) -> list[StoredResult]:
        return self._load(results.c.run_id == run_id, order_desc=False)

    def all_results(self) -> list[StoredResult]:
        """Oldest first: the trend plots' input."""
        return self._load(sa.true(), order_desc=False)

    def run(self, run_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            raise PipelineError(f"history {self.url}: no run {run_id}")
        out = dict(row)
        out["started_utc"], out["finished_utc"] = _utc(out["started_utc"]), _utc(out["finished_utc"])
        return out

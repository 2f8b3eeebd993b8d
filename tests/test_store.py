"""The result store, on SQLite and on PostgreSQL (each PostgreSQL test in its own schema)."""

from __future__ import annotations

import enum
import math
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command, op
from alembic.autogenerate import compare_metadata, produce_migrations, render_python_code
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from checks.results import Direction, MetricResult, Status
from monitor.store import (
    METRIC_COLUMNS,
    RUN_STATUSES,
    RUN_TRIGGERS,
    ReferenceRecord,
    RunRecord,
    Store,
    StoredProfile,
    models,
    normalize_url,
)
from monitor.store.engine import migration_connection
from monitor.store.migrations import env
from monitor.store.models import Base, MetricRow, RunRow
from monitor.store.store import MIGRATIONS
from monitor.store.types import BigIntId, JSONType, UTCDateTime, json_dumps
from monitor.windows import Window

UTC = timezone.utc
PLUS2 = timezone(timedelta(hours=2))
T0 = datetime(2024, 3, 1, tzinfo=UTC)
TABLES = {"runs", "metric_results", "window_profiles", "reference_profiles"}


def hour(i: int) -> Window:
    return Window(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1))


def make_run(window: Window | None = None, monitor: str = "churn", status: str = "ok", **fields: Any) -> RunRecord:
    window = window or hour(0)
    return RunRecord(
        monitor=monitor,
        window=window,
        status=status,
        started_at=window.end + timedelta(minutes=1),
        finished_at=window.end + timedelta(minutes=1, seconds=30),
        **fields,
    )


def make_metric(
    check: str = "drift", column: str = "age", metric: str = "psi", value: float | None = 0.1, **fields: Any
) -> MetricResult:
    fields.setdefault("status", Status.OK)
    return MetricResult(check=check, column=column, metric=metric, value=value, **fields)


def count(store: Store, table: str) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def run_in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(0..n-1)`` in n threads released together; re-raises the first error."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below, on the test's thread
            errors.append(exc)

    # Daemon threads: a deadlocked writer fails its test instead of blocking the interpreter's exit.
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    if errors:
        raise errors[0]
    return results


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'driftline.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as opened:
        yield opened


# -- schema and migrations -------------------------------------------------------------------


def test_migration_creates_the_schema_of_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        assert TABLES | {"alembic_version"} <= set(sa.inspect(connection).get_table_names())
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        assert head is not None and context.get_current_revision() == head


def test_migrate_again_is_a_no_op_that_keeps_the_data(store_url: str) -> None:
    with Store.open(store_url) as first:
        run_id = first.save_run(make_run(), [make_metric()])
    with Store.open(store_url) as second:
        second.migrate()
        stored = second.run_for("churn", hour(0))
        assert stored is not None and stored.id == run_id
        assert count(second, "metric_results") == 1


_OPEN_WHEN_ALL_READY = """
import sys, time
from pathlib import Path
from monitor.store import Store
url, folder, me, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(folder / me).touch()
deadline = time.monotonic() + 30
while len(list(folder.iterdir())) < n and time.monotonic() < deadline:
    time.sleep(0.005)
Store.open(url).dispose()
"""


def test_first_migrations_of_concurrent_processes_do_not_collide(store_url: str, tmp_path: Any) -> None:
    # Separate processes, released together once all have imported: the database must
    # serialise them (advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
    processes, ready = 3, tmp_path / "ready"
    ready.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_WHEN_ALL_READY, store_url, str(ready), str(i), str(processes)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(processes)
    ]
    try:
        for child in children:
            _, stderr = child.communicate(timeout=60)
            assert child.returncode == 0, stderr.decode()
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    with Store(store_url) as store, store.engine.connect() as connection:
        assert TABLES <= set(sa.inspect(connection).get_table_names())
        assert connection.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_stores_of_different_databases_migrate_concurrently_in_one_process(tmp_path: Any) -> None:
    # No database lock is shared here; only the store's process-wide lock keeps Alembic's
    # module-level proxies from mixing up the threads' connections.
    urls = [f"sqlite:///{tmp_path / f'db{i}.sqlite'}" for i in range(4)]
    run_in_threads(len(urls), lambda i: Store.open(urls[i]).dispose())
    for url in urls:
        with Store(url) as store, store.engine.connect() as connection:
            assert TABLES <= set(sa.inspect(connection).get_table_names())


def test_autogenerated_revisions_of_our_types_run_and_match(store: Store) -> None:
    # Future revisions are drafted by autogenerate through env.py's render_item: a column of
    # each of our types must render without application imports, run, and round-trip exactly.
    metadata = sa.MetaData(naming_convention=models.NAMING_CONVENTION)
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    sa.Table(
        "probe", metadata,
        sa.Column("id", BigIntId, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("doc", JSONType, nullable=True),
    )  # fmt: skip
    with store.engine.begin() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "target_metadata": metadata})
        code = render_python_code(
            produce_migrations(context, metadata).upgrade_ops, render_item=env._render_item, migration_context=context
        )
        assert "monitor" not in code and "astext_type" not in code
        namespace: dict[str, Any] = {"sa": sa, "op": op, "postgresql": postgresql}
        exec("def upgrade():\n    " + code, namespace)  # noqa: S102 - our own rendered revision
        with Operations.context(context):
            namespace["upgrade"]()
        assert compare_metadata(context, metadata) == []


@pytest.mark.postgres
def test_alembic_version_table_lands_in_the_search_path_schema(pg_url: str) -> None:
    with Store.open(pg_url) as store, store.engine.connect() as connection:
        schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
        where = connection.execute(
            sa.text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'")
        ).scalars()
        assert schema != "public"
        assert schema in set(where)


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with Store.open(url) as migrated, migrated.engine.connect() as connection:
        # The pooled connection the migration used: it had foreign keys off, and must restore them.
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with Store(url) as store, store.engine.connect() as connection:  # a fresh connection
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


_REBUILD_RUNS = """
import sqlalchemy as sa
from alembic import command, op

revision = "9999"
down_revision = "{head}"


def upgrade() -> None:
    with op.batch_alter_table("runs", recreate="always") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
"""


def test_a_sqlite_migration_that_rebuilds_runs_keeps_their_metrics(tmp_path: Any) -> None:
    # Batch mode drops and recreates a table; with foreign keys on, dropping `runs` would
    # cascade-delete every metric. migration_connection turns them off around the upgrade.
    versions = tmp_path / "versions"
    shutil.copytree(MIGRATIONS / "versions", versions, ignore=shutil.ignore_patterns("__pycache__"))
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()  # build on the real head: no new branch
    (versions / "9999_rebuild_runs.py").write_text(_REBUILD_RUNS.replace("{head}", head))
    config.set_main_option("version_locations", str(versions))
    with Store.open(f"sqlite:///{tmp_path / 'x.db'}") as store:
        store.save_run(make_run(), [make_metric()], [StoredProfile("*", "age", {})])
        with migration_connection(store.engine) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        assert "note" in {column["name"] for column in sa.inspect(store.engine).get_columns("runs")}
        assert (count(store, "metric_results"), count(store, "window_profiles")) == (1, 1)


def test_deleting_a_run_deletes_its_metrics_and_profiles(store: Store) -> None:
    store.engine.dispose()  # fresh connections: foreign keys must come from connecting, not migrating
    store.save_run(make_run(), [make_metric()], [StoredProfile("*", "age", {"count": 3})])
    with store.session() as session:
        session.execute(sa.delete(RunRow))
    assert (count(store, "metric_results"), count(store, "window_profiles")) == (0, 0)


def test_the_database_refuses_an_unknown_status(store: Store) -> None:
    values = {
        "monitor": "churn", "window_start": T0, "window_end": T0 + timedelta(hours=1), "status": "weird",
        "trigger": "run", "started_at": T0, "finished_at": T0, "rows": 0, "bad_rows": 0,
        "config_fingerprint": "", "driftline_version": "",
    }  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), store.session() as session:
        session.execute(sa.insert(RunRow).values(values))


def test_status_vocabularies_of_the_schema_match_the_domain() -> None:
    hint = "the CHECK constraints in monitor/store/models.py need the same values and a migration"
    assert models.RUN_STATUS_VALUES == RUN_STATUSES, hint
    assert models.RUN_TRIGGER_VALUES == RUN_TRIGGERS, hint
    assert set(models.METRIC_STATUS_VALUES) == {status.value for status in Status}, hint
    assert set(models.DIRECTION_VALUES) == {direction.value for direction in Direction}, hint


def test_a_run_record_refuses_unknown_status_and_trigger() -> None:
    with pytest.raises(ValueError, match="run status 'done'"):
        make_run(status="done")
    with pytest.raises(ValueError, match="run trigger 'cron'"):
        make_run(trigger="cron")


# -- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@db/driftline", "postgresql+psycopg://u@db/driftline"),
        ("postgres://u:pw@db:5433/driftline", "postgresql+psycopg://u:pw@db:5433/driftline"),
        ("postgresql+psycopg://u@db/driftline", "postgresql+psycopg://u@db/driftline"),
        ("sqlite:///data/driftline.db", "sqlite:///data/driftline.db"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_the_store_url_hides_the_password() -> None:
    store = Store("postgres://alice:s3cret@db.example:5432/driftline")  # engines connect lazily
    try:
        assert store.url == "postgresql+psycopg://alice:***@db.example:5432/driftline"
        assert "s3cret" not in repr(store)
        assert store.engine.url.password == "s3cret"  # hidden from display only
    finally:
        store.dispose()


def test_other_databases_are_refused_with_the_supported_ones_named() -> None:
    with pytest.raises(ValueError, match="sqlite and postgresql.*mysql"):
        Store("mysql://u:pw@db/driftline")


# -- runs ------------------------------------------------------------------------------------


def test_run_round_trip(store: Store) -> None:
    run = make_run(
        hour(3), status="failed", rows=1200, bad_rows=7, error="SourceError: no such file",
        config_fingerprint="cfg-abc", reference_version=2, driftline_version="0.1.0", trigger="backfill",
    )  # fmt: skip
    run_id = store.save_run(run, [])
    assert store.run_for("churn", hour(3)) == replace(run, id=run_id)
    assert store.run_for("churn", hour(4)) is None
    assert store.run_for("fraud", hour(3)) is None
    assert run.duration_s == 30.0


def test_timestamps_come_back_timezone_aware_utc_and_equal(store: Store) -> None:
    # 12:00+02:00 is 10:00 UTC. SQLite would drop the offset and answer 12:00.
    start = datetime(2024, 3, 1, 12, tzinfo=PLUS2)
    window = Window(start, start + timedelta(hours=1))
    run = RunRecord(
        monitor="churn", window=window, status="ok",
        started_at=datetime(2024, 3, 1, 13, 5, tzinfo=PLUS2),
        finished_at=datetime(2024, 3, 1, 11, 6),  # naive: taken to be UTC
    )  # fmt: skip
    store.save_run(run, [make_metric()], [StoredProfile("*", "age", {})])
    reference = store.save_reference("churn", "fp", 10, {})

    stored = store.run_for("churn", window)
    assert stored is not None
    moments = [stored.window.start, stored.window.end, stored.started_at, stored.finished_at, reference.created_at]
    assert all(moment.utcoffset() == timedelta(0) for moment in moments)
    assert stored.window.start == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert stored.started_at == datetime(2024, 3, 1, 11, 5, tzinfo=UTC)
    assert stored.finished_at == datetime(2024, 3, 1, 11, 6, tzinfo=UTC)
    assert stored.duration_s == 60.0
    assert store.latest_reference("churn") == reference

    frame = store.metrics("churn")
    assert frame["window_start"].iloc[0] == pd.Timestamp("2024-03-01T10:00Z")
    assert str(frame["window_start"].dt.tz) == "UTC"
    assert store.profiles("churn", "age")[0][0] == window
    # Filters given in another offset mean the same instants.
    assert store.done_windows("churn", datetime(2024, 3, 1, 12, tzinfo=PLUS2), datetime(2024, 3, 1, 11)) == {window}
    assert store.done_windows("churn", datetime(2024, 3, 1, 12, 30, tzinfo=PLUS2), datetime(2024, 3, 1, 12)) == set()


def test_utc_datetime_stores_utc_and_treats_naive_input_as_utc() -> None:
    column = UTCDateTime()
    aware = datetime(2024, 3, 1, 12, tzinfo=PLUS2)
    naive = datetime(2024, 3, 1, 10)
    assert column.process_bind_param(aware, sqlite.dialect()) == naive  # text sorts as UTC
    assert column.process_bind_param(naive, postgresql.dialect()) == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert column.process_result_value(naive, sqlite.dialect()) == datetime(2024, 3, 1, 10, tzinfo=UTC)
    back = column.process_result_value(aware, postgresql.dialect())
    assert back is not None and back.tzinfo is UTC and back == aware
    with pytest.raises(TypeError):
        column.process_bind_param("2024-03-01", sqlite.dialect())  # type: ignore[arg-type]


def test_runs_done_windows_and_last_run(store: Store) -> None:
    statuses = ["ok", "breach", "failed", "no_data", "ok"]
    for i in (3, 0, 4, 2, 1):  # stored out of order
        store.save_run(make_run(hour(i), status=statuses[i]), [])
    store.save_run(make_run(hour(1), monitor="fraud"), [])

    assert [(r.monitor, r.window) for r in store.runs()] == [
        ("churn", hour(0)), ("churn", hour(1)), ("fraud", hour(1)),
        ("churn", hour(2)), ("churn", hour(3)), ("churn", hour(4)),
    ]  # fmt: skip
    assert [r.window for r in store.runs("churn")] == [hour(i) for i in range(5)]
    assert [r.window for r in store.runs("churn", status="failed")] == [hour(2)]
    assert [r.window for r in store.runs("churn", start=hour(1).start, end=hour(3).end)] == [hour(1), hour(2), hour(3)]
    assert [r.window for r in store.runs("churn", limit=2)] == [hour(3), hour(4)]  # the latest, in order
    assert store.done_windows("churn", hour(0).start, hour(5).start) == {hour(0), hour(1), hour(3), hour(4)}
    # Inside [start, end) only: hour(4) ends after end, hour(0) starts before start.
    assert store.done_windows("churn", hour(0).start + timedelta(minutes=1), hour(4).end - timedelta(minutes=1)) == {
        hour(1), hour(3),
    }  # fmt: skip
    last = store.last_run("churn")
    assert last is not None and last.window == hour(4)
    assert store.last_run("nobody") is None


def test_monitors_have_a_run_or_a_reference(store: Store) -> None:
    assert store.monitors() == []
    store.save_reference("c-ref-and-run", "fp", 1, {})
    store.save_run(make_run(monitor="c-ref-and-run"), [])
    store.save_run(make_run(monitor="b-run"), [])
    store.save_reference("a-ref", "fp", 1, {})
    assert store.monitors() == ["a-ref", "b-run", "c-ref-and-run"]


# -- metrics and profiles --------------------------------------------------------------------


def test_metrics_round_trip(store: Store) -> None:
    metrics = [
        make_metric("drift", "age", "psi", 0.31, status=Status.BREACH, threshold=0.2, direction=Direction.MAX,
                    details={"bins": [0.1, 0.9], "test": {"name": "psi", "n": 1200}}),
        make_metric("quality", "", "row_count", 1200, status=Status.INFO),
        make_metric("performance", "label", "auc", 0.7, status=Status.OK, threshold=0.6, direction=Direction.MIN,
                    segment="country=FR"),
    ]  # fmt: skip
    run_id = store.save_run(make_run(hour(2)), metrics)

    frame = store.metrics("churn")
    assert list(frame.columns) == list(METRIC_COLUMNS)
    assert frame["value"].dtype == np.float64 and frame["run_id"].dtype == np.int64
    rows = frame.to_dict("records")
    assert [(r["check"], r["column"], r["metric"]) for r in rows] == [
        ("drift", "age", "psi"), ("performance", "label", "auc"), ("quality", "", "row_count"),
    ]  # fmt: skip
    psi, auc, row_count = rows
    assert psi["monitor"] == "churn" and psi["segment"] == "*" and psi["run_id"] == run_id
    assert (psi["window_start"], psi["window_end"]) == (pd.Timestamp(hour(2).start), pd.Timestamp(hour(2).end))
    assert (psi["value"], psi["threshold"], psi["direction"], psi["status"]) == (0.31, 0.2, "max", "breach")
    assert psi["details"] == {"bins": [0.1, 0.9], "test": {"name": "psi", "n": 1200}}
    assert (auc["segment"], auc["direction"], auc["status"]) == ("country=FR", "min", "ok")
    assert row_count["value"] == 1200.0 and math.isnan(row_count["threshold"]) and pd.isna(row_count["direction"])
    assert row_count["details"] == {}


def test_metrics_of_an_empty_store_have_the_same_columns_and_types(store: Store) -> None:
    store.save_run(make_run(), [make_metric()])
    empty, full = store.metrics("nobody"), store.metrics("churn")
    assert len(empty) == 0 and len(full) == 1
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()


def test_a_nan_value_is_stored_as_null(store: Store) -> None:
    store.save_run(make_run(), [make_metric(value=float("nan"), status=Status.NO_DATA)])
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT value FROM metric_results")).scalar_one() is None
    frame = store.metrics("churn")
    assert math.isnan(frame["value"].iloc[0])
    assert frame["details"].iloc[0] == {"raw_value": "nan"}


def test_json_columns_take_numpy_and_turn_non_finite_floats_into_null(store: Store) -> None:
    # PostgreSQL's JSONB rejects NaN and Infinity; both databases must store the same thing.
    details = {"p_value": float("inf"), "bins": np.array([1.0, np.nan]), "n": np.int64(3)}
    payload = {"edges": np.array([-np.inf, 0.5, np.inf]), "counts": np.array([1, 2], dtype=np.int32)}
    store.save_run(make_run(), [make_metric(details=details)], [StoredProfile("*", "age", payload)])
    assert store.metrics("churn")["details"].iloc[0] == {"p_value": None, "bins": [1.0, None], "n": 3}
    assert store.profiles("churn", "age")[0][1] == {"edges": [None, 0.5, None], "counts": [1, 2]}


def test_json_dumps_converts_what_profiles_hold_and_refuses_the_rest() -> None:
    class Colour(enum.Enum):
        RED = "red"

    assert json_dumps({"c": Colour.RED, "at": T0, np.int64(2): np.float32(0.5)}) == (
        '{"c":"red","at":"2024-03-01T00:00:00+00:00","2":0.5}'
    )
    with pytest.raises(TypeError, match="object"):
        json_dumps({"x": object()})


def test_metrics_filters(store: Store) -> None:
    keys = [
        (monitor, i, check, column, segment)
        for monitor in ("churn", "fraud")
        for i in range(3)
        for check, column in (("drift", "age"), ("drift", "income"), ("quality", "age"))
        for segment in ("*", "country=FR")
    ]
    for monitor in ("churn", "fraud"):
        for i in range(3):
            metrics = [
                make_metric(check, column, "psi" if check == "drift" else "missing_share", value=float(i),
                            segment=segment, status=Status.BREACH if i == 2 and column == "income" else Status.OK)
                for (m, j, check, column, segment) in keys if (m, j) == (monitor, i)
            ]  # fmt: skip
            store.save_run(make_run(hour(i), monitor=monitor), metrics)

    def selected(frame: pd.DataFrame) -> set[tuple[Any, ...]]:
        return {
            (r.monitor, int(r.value), r.check, r.column, r.segment) for r in frame.itertuples(index=False)
        }

    def expected(predicate: Callable[[tuple[Any, ...]], bool]) -> set[tuple[Any, ...]]:
        return {key for key in keys if predicate(key)}

    assert selected(store.metrics()) == set(keys)
    assert selected(store.metrics("fraud")) == expected(lambda k: k[0] == "fraud")
    assert selected(store.metrics("churn", check="quality")) == expected(
        lambda k: k[0] == "churn" and k[2] == "quality"
    )
    assert selected(store.metrics(column="income")) == expected(lambda k: k[3] == "income")
    assert selected(store.metrics(segment="country=FR")) == expected(lambda k: k[4] == "country=FR")
    assert selected(store.metrics(metric="missing_share")) == expected(lambda k: k[2] == "quality")
    assert selected(store.metrics(status="breach")) == expected(lambda k: k[1] == 2 and k[3] == "income")
    assert selected(store.metrics("churn", start=hour(1).start)) == expected(lambda k: k[0] == "churn" and k[1] >= 1)
    assert selected(store.metrics("churn", end=hour(1).end)) == expected(lambda k: k[0] == "churn" and k[1] <= 1)
    # A window that only overlaps the range is left out.
    assert selected(store.metrics(start=hour(0).start + timedelta(minutes=30), end=hour(2).start)) == expected(
        lambda k: k[1] == 1
    )
    assert selected(store.metrics("churn", check="drift", column="age", segment="*", start=hour(2).start)) == {
        ("churn", 2, "drift", "age", "*")
    }

    frame = store.metrics("churn", segment="*")
    order = list(zip(frame["window_start"], frame["check"], frame["column"], frame["metric"]))
    assert order == sorted(order) and len(order) == 9


def test_metrics_is_a_single_query(store: Store) -> None:
    store.save_run(make_run(), [make_metric(column=f"c{i}") for i in range(50)])
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's BEGIN, emitted by the store
            statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        assert len(store.metrics("churn")) == 50
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    assert len(statements) == 1


def test_profiles_round_trip_and_filters(store: Store) -> None:
    for i in range(3):
        profiles = [
            StoredProfile("*", "age", {"count": 100 + i, "hist": [i, 1]}),
            StoredProfile("country=FR", "age", {"count": 10 + i}),
            StoredProfile("*", "income", {"count": 1}),
        ]
        store.save_run(make_run(hour(i)), [], profiles)
    store.save_run(make_run(hour(0), monitor="fraud"), [], [StoredProfile("*", "age", {"count": -1})])

    assert store.profiles("churn", "age") == [(hour(i), {"count": 100 + i, "hist": [i, 1]}) for i in range(3)]
    assert store.profiles("churn", "age", segment="country=FR") == [(hour(i), {"count": 10 + i}) for i in range(3)]
    assert [w for w, _ in store.profiles("churn", "age", start=hour(1).start)] == [hour(1), hour(2)]
    assert [w for w, _ in store.profiles("churn", "age", end=hour(1).end)] == [hour(0), hour(1)]
    assert store.profiles("fraud", "age") == [(hour(0), {"count": -1})]
    assert store.profiles("churn", "missing") == []


# -- idempotent re-runs and transactions -----------------------------------------------------


def test_a_rerun_replaces_the_results_of_its_window(store: Store) -> None:
    neighbour = store.save_run(make_run(hour(1)), [make_metric()], [StoredProfile("*", "age", {"n": 1})])
    first = store.save_run(
        make_run(hour(0), status="breach", rows=10),
        [make_metric(metric="psi", value=0.5), make_metric(metric="ks", value=0.3), make_metric(column="income")],
        [StoredProfile("*", "age", {"n": 10}), StoredProfile("*", "income", {"n": 10})],
    )
    assert (count(store, "runs"), count(store, "metric_results"), count(store, "window_profiles")) == (2, 4, 3)

    second = store.save_run(
        make_run(hour(0), status="ok", rows=20),
        [make_metric(metric="psi", value=0.05), make_metric(metric="wasserstein", value=1.5)],
        [StoredProfile("*", "age", {"n": 20})],
    )
    assert second == first
    assert (count(store, "runs"), count(store, "metric_results"), count(store, "window_profiles")) == (2, 3, 2)
    rerun = store.run_for("churn", hour(0))
    assert rerun is not None and (rerun.status, rerun.rows) == ("ok", 20)
    frame = store.metrics("churn", end=hour(0).end)
    assert dict(zip(frame["metric"], frame["value"])) == {"psi": 0.05, "wasserstein": 1.5}
    assert store.profiles("churn", "age", end=hour(0).end) == [(hour(0), {"n": 20})]
    assert store.profiles("churn", "income") == []
    assert set(store.metrics("churn", start=hour(1).start)["run_id"]) == {neighbour}  # untouched


def test_also_runs_in_the_results_transaction(store: Store) -> None:
    seen: list[tuple[int, str]] = []

    def also(session: Session, run_id: int) -> None:
        run = session.get(RunRow, run_id)
        values = session.scalars(sa.select(MetricRow.value).where(MetricRow.run_id == run_id)).all()
        seen.append((run_id, f"{run.status if run else None} {values}"))

    run_id = store.save_run(make_run(status="breach"), [make_metric(value=0.4)], also=also)
    assert seen == [(run_id, "breach [0.4]")]


def test_a_failing_also_rolls_the_whole_save_back(store: Store) -> None:
    store.save_run(make_run(status="breach"), [make_metric(value=0.4)], [StoredProfile("*", "age", {"n": 1})])

    def broken_outbox(_session: Session, _run_id: int) -> None:
        raise RuntimeError("outbox down")

    with pytest.raises(RuntimeError, match="outbox down"):
        store.save_run(make_run(status="ok"), [make_metric(value=0.01)], [], also=broken_outbox)
    kept = store.run_for("churn", hour(0))
    assert kept is not None and kept.status == "breach"
    assert store.metrics("churn")["value"].tolist() == [0.4]
    assert store.profiles("churn", "age") == [(hour(0), {"n": 1})]


def test_duplicate_metric_keys_are_refused_before_writing(store: Store) -> None:
    with pytest.raises(ValueError, match=r"\('drift', 'age', '\*', 'psi'\) appears twice"):
        store.save_run(make_run(), [make_metric(value=0.1), make_metric(value=0.2)])
    with pytest.raises(ValueError, match="two profiles of column 'age'"):
        store.save_run(make_run(), [], [StoredProfile("*", "age", {}), StoredProfile("*", "age", {})])
    assert count(store, "runs") == 0


def test_concurrent_saves_of_one_window_leave_one_run_and_one_set_of_metrics(store: Store) -> None:
    writers = 4

    def hold_the_transaction(_session: Session, _run_id: int) -> None:
        # Keep each transaction open long enough for the others to collide with it.
        threading.Event().wait(0.2)

    def save(i: int) -> int:
        metrics = [make_metric(metric=name, value=float(i)) for name in ("psi", "ks", "js")]
        profiles = [StoredProfile("*", "age", {"writer": i})]
        return store.save_run(make_run(rows=i), metrics, profiles, also=hold_the_transaction)

    run_ids = run_in_threads(writers, save)
    assert len(set(run_ids)) == 1
    assert (count(store, "runs"), count(store, "metric_results"), count(store, "window_profiles")) == (1, 3, 1)
    winner = store.run_for("churn", hour(0))
    assert winner is not None
    # The last writer won whole: its run row, all its metrics and its profile.
    assert set(store.metrics("churn")["value"]) == {float(winner.rows)}
    assert store.profiles("churn", "age") == [(hour(0), {"writer": winner.rows})]


# -- references ------------------------------------------------------------------------------


def test_reference_versioning(store: Store) -> None:
    first = store.save_reference("churn", "fp-a", 1000, {"age": {"edges": [0, 30, 60]}})
    second = store.save_reference("churn", "fp-b", 2000, {"age": {"edges": [0, 40, 80]}})
    again = store.save_reference("churn", "fp-a", 5, {"ignored": True})
    other = store.save_reference("fraud", "fp-a", 10, {})

    assert isinstance(first, ReferenceRecord)
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert again == first  # learned once: the stored record, not the new payload
    assert count(store, "reference_profiles") == 3
    assert store.latest_reference("churn") == second
    assert store.reference("churn", 1) == first
    assert store.reference("churn", 3) is None
    assert store.reference_for("churn", "fp-b") == second
    assert store.reference_for("churn", "fp-z") is None
    assert store.latest_reference("nobody") is None
    assert first.payload == {"age": {"edges": [0, 30, 60]}} and first.rows == 1000


def test_concurrent_references_get_distinct_versions_or_the_same_record(store: Store) -> None:
    distinct = run_in_threads(4, lambda i: store.save_reference("churn", f"fp-{i}", i, {"i": i}))
    assert sorted(r.version for r in distinct) == [1, 2, 3, 4]
    same = run_in_threads(4, lambda i: store.save_reference("fraud", "fp", i, {"i": i}))
    assert len({(r.version, r.rows) for r in same}) == 1
    assert count(store, "reference_profiles") == 5


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config

"""Alembic environment of the result store.

``Store.migrate()`` passes its live connection in ``config.attributes["connection"]``, already
in a transaction (locked, and on SQLite with foreign keys off: see
``monitor.store.engine.migration_connection``); the whole upgrade then commits or rolls back as
one. From the ``alembic`` command line (``alembic.ini`` beside this file) the URL comes from
``-x url=...`` or ``DRIFTLINE_STORE_URL``.

Nothing here names a schema: the version table goes where the connection's search path points,
so one PostgreSQL database can hold several stores.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON
from sqlalchemy.engine import Connection

from monitor.store.engine import create_store_engine, migration_connection, normalize_url
from monitor.store.models import Base
from monitor.store.types import UTCDateTime

target_metadata = Base.metadata


def _render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """How autogenerate writes our types into a revision.

    Revisions stay free of imports from the application, whose code moves on: in the database
    a UTCDateTime is a timezone-aware timestamp. JSON columns are rendered by hand because
    Alembic's own rendering of the JSONB variant writes ``astext_type=Text()`` with ``Text``
    never imported, a revision that fails only when it runs.
    """
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


def _options(dialect_name: str) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        "render_as_batch": dialect_name == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DRIFTLINE_STORE_URL")
    if not url:
        raise SystemExit("give the store URL: alembic -x url=... or DRIFTLINE_STORE_URL")
    return url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():  # a no-op inside the caller's transaction
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_store_engine(_url())
    try:
        with migration_connection(engine) as connection:
            _run(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    url = normalize_url(_url())
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(url.get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    if config.config_file_name is not None and config.attributes.get("connection") is None:
        fileConfig(config.config_file_name)  # command line only: never reconfigure the service's logging
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()


# Alembic runs this file inside an active environment; a plain import (pytest
# --doctest-modules, compileall of the installed package) must do nothing.
if hasattr(context, "config"):
    main()

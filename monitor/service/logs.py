"""Structured logs of the service: JSON lines (``--log-json``) or ``key=value`` lines.

Events carry their fields in ``extra={"fields": {...}}`` (see ``event``); records from other
loggers (the runner, APScheduler) come out in the same format with their message only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from monitor.windows import Window

_FIELDS = "fields"


def event(logger: logging.Logger, level: int, name: str, message: str, **fields: Any) -> None:
    """Log ``message`` as event ``name`` with ``fields`` (None values are left out)."""
    clean = {k: _plain(v) for k, v in fields.items() if v is not None}
    logger.log(level, message, extra={_FIELDS: {"event": name, **clean}})


def _plain(value: Any) -> Any:
    if isinstance(value, Window):
        return f"{value.start.isoformat()}/{value.end.isoformat()}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 3)
    return value


def _base(record: logging.LogRecord) -> dict[str, Any]:
    moment = datetime.fromtimestamp(record.created, timezone.utc)
    return {
        "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, the event's fields, msg."""

    def format(self, record: logging.LogRecord) -> str:
        out = _base(record)
        out.update(getattr(record, _FIELDS, {}))
        out["msg"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class KeyValueFormatter(logging.Formatter):
    """``ts level=... event=... monitor=... msg="..."``: greppable, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        base = _base(record)
        parts = [base["ts"], f"level={base['level']}"]
        for key, value in getattr(record, _FIELDS, {}).items():
            parts.append(f"{key}={_quoted(value)}")
        parts.append(f"msg={_quoted(record.getMessage())}")
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _quoted(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n'):
        return json.dumps(text)
    return text


def configure(json_lines: bool = False, level: int = logging.INFO) -> None:
    """Send every log record to stderr in the chosen format (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The service logs each run itself (run_finished); APScheduler's job chatter is noise, and
    # its "skipped: maximum number of running instances" is expected while a job catches up.
    logging.getLogger("driftline.runner").setLevel(max(level, logging.WARNING))
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))  # the store's migrations at start

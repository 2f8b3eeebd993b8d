"""Keep secrets out of errors and logs.

Every error a channel records and every log line the sender writes goes through a
:class:`Redactor`: the configured secret values (tokens, webhook URLs, signing secrets) and
anything shaped like a credential (URL passwords, Slack tokens and webhook paths, bearer tokens,
token-like query parameters) become ``***``.

>>> r = Redactor(["s3cr3t-value"])
>>> r("POST https://user:pw@hooks.slack.com/services/T0/B0/XYZ failed; token xoxb-1-2-abc; s3cr3t-value")
'POST https://user:***@hooks.slack.com/services/*** failed; token xoxb-***; ***'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),  # URL passwords
    (re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s'\"<>]+"), r"\1" + MASK),
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"), lambda m: m.group(0)[:5] + MASK),  # type: ignore[list-item]
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), "xapp-" + MASK),
    (re.compile(r"\bdapi[0-9a-f]{16,}\b"), "dapi" + MASK),  # Databricks personal access tokens
    (re.compile(r"(?i)(bearer\s+)[^\s'\",]+"), r"\1" + MASK),
    (re.compile(r"(?i)([?&](?:token|access_token|api_key|apikey|key|sig|signature|secret|password)=)[^&\s'\"]+"), r"\1" + MASK),
)


class Redactor:
    """Callable: ``redactor(text) -> text`` with secrets masked."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= _MIN_SECRET and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: object) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            out = pattern.sub(replacement, out)  # type: ignore[arg-type]
        return out

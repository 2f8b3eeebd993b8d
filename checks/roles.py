"""Which column means what, as far as the checks need to know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PredictionKind = Literal["probability", "class", "regression"]


@dataclass(frozen=True)
class Roles:
    """Column roles of one monitor.

    ``numeric``/``categorical`` are the features; ``prediction_kind`` says how to read the
    prediction (a probability of the positive class, a class label, or a number); ``latency`` is
    in milliseconds.
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    prediction: str | None = None
    prediction_kind: PredictionKind | None = None
    target: str | None = None
    latency: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def columns(self) -> tuple[str, ...]:
        """Every column with a role, features first, each once."""
        named = (*self.features, self.prediction, self.target, self.latency)
        return tuple(dict.fromkeys(c for c in named if c))

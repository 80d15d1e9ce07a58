"""Typed helpers that read settings from environment variables.

Each helper raises ImproperlyConfigured naming the variable and what it expected,
so a typo in the environment stops the process at start-up with a clear message
instead of surfacing later as a confusing runtime error.
"""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

T = TypeVar("T")
_MISSING = object()

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def _parse(name: str, default: object, parse: Callable[[str], T], expected: str) -> T:
    raw = _raw(name)
    if raw is None or raw == "":
        if default is _MISSING:
            raise ImproperlyConfigured(f"{name} is required: set it to {expected}.")
        return default  # type: ignore[return-value]
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not valid: expected {expected}.") from exc


def env_str(name: str, default: object = _MISSING) -> str:
    return _parse(name, default, str, "a string")


def env_bool(name: str, default: object = _MISSING) -> bool:
    def parse(raw: str) -> bool:
        word = raw.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(raw)

    return _parse(name, default, parse, "one of true/false, yes/no, on/off, 1/0")


def env_int(name: str, default: object = _MISSING, *, minimum: int | None = None) -> int:
    def parse(raw: str) -> int:
        value = int(raw)
        if minimum is not None and value < minimum:
            raise ValueError(raw)
        return value

    bound = f" >= {minimum}" if minimum is not None else ""
    return _parse(name, default, parse, f"a whole number{bound}")


def env_float(name: str, default: object = _MISSING, *, minimum: float | None = None) -> float:
    def parse(raw: str) -> float:
        value = float(raw)
        if minimum is not None and value < minimum:
            raise ValueError(raw)
        return value

    bound = f" >= {minimum}" if minimum is not None else ""
    return _parse(name, default, parse, f"a number{bound}")


def env_list(name: str, default: object = _MISSING) -> list[str]:
    def parse(raw: str) -> list[str]:
        return [item.strip() for item in raw.split(",") if item.strip()]

    return _parse(name, default, parse, "a comma-separated list")


def env_timezone(name: str, default: object = _MISSING) -> str:
    def parse(raw: str) -> str:
        try:
            zoneinfo.ZoneInfo(raw)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(raw) from exc
        return raw

    return _parse(name, default, parse, "an IANA time zone such as Asia/Jerusalem or UTC")


def env_url(name: str, default: object = _MISSING, *, schemes: tuple[str, ...]) -> str:
    def parse(raw: str) -> str:
        scheme, sep, rest = raw.partition("://")
        if not sep or scheme not in schemes or not rest:
            raise ValueError(raw)
        return raw

    return _parse(name, default, parse, f"a URL starting with one of {', '.join(schemes)}://")


def env_choice(name: str, choices: tuple[str, ...], default: object = _MISSING) -> str:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(raw)
        return raw

    return _parse(name, default, parse, f"one of {', '.join(choices)}")

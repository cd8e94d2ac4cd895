"""One place for the checks of user settings: each error names the key, the value and what is
valid (with a "did you mean" where one is close). Standard library only, so every layer can use it.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class ConfigError(ValueError):
    """A config that cannot describe a run: the message names the key and what is valid."""


def check_keys(data: Mapping[Any, Any], valid: Sequence[str], prefix: str) -> None:
    """Raise a ConfigError for the first key of ``data`` not in ``valid``, with a suggestion."""
    for key in data:
        if key not in valid:
            raise ConfigError(unknown_key_message(str(key), valid, prefix))


def unknown_key_message(key: str, valid: Sequence[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    section = f"in {prefix.rstrip('.')}" if prefix else "at the top level"
    return f"unknown key {prefix + key!r}{hint}; valid keys {section}: {', '.join(valid)}."


def check_choice(
    name: str, value: Any, choices: Iterable[str], *, ignore_case: bool = False
) -> Any:
    """``value`` if it is one of ``choices`` (lower-cased first with ``ignore_case``), else a
    ConfigError naming ``name``, the value, the closest choice and all of them (a mapping or set
    of choices is listed sorted, a sequence in its order)."""
    options = list(choices) if isinstance(choices, (list, tuple)) else sorted(choices)
    candidate = value.lower() if ignore_case and isinstance(value, str) else value
    if isinstance(candidate, str) and candidate in options:
        return candidate
    close = difflib.get_close_matches(str(candidate), [str(o) for o in options], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"{name}: {value!r} is not valid{hint}; choose one of {options}.")


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` if it is a whole number >= ``low`` (numpy integers too; bools and floats are
    not), else a ConfigError naming ``name`` and the bound."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def positive_int_arg(text: str) -> int:
    """An argparse ``type``: a whole number >= 1 (argparse names the option in its error)."""
    import argparse

    try:
        return check_int("value", int(text))
    except (ValueError, ConfigError):
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None


def check_fraction(
    name: str, value: Any, *, low_open: bool = True, high_closed: bool = True
) -> float:
    """``value`` if it lies in (0, 1] (or the bounds asked for); ints count, bools, NaN do not."""
    interval = ("(" if low_open else "[") + "0, 1" + ("]" if high_closed else ")")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number in {interval}, got {value!r}.")
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value <= 1 if high_closed else value < 1
    if not (low_ok and high_ok):
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}.")
    return float(value)


def check_finite(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number; bools, strings and None are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def check_number(
    path: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    also: Sequence[int] = (),
    why: str = "",
) -> int | float:
    """``value`` if it is a finite number within the bounds (``integer``: a whole one, returned
    as an int, so ``1e6`` works as for the typed keys; ``also``: extra valid values), else a
    ConfigError naming ``path``, the value and the valid range (``why``: appended reason)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value) and (not integer or value.is_integer())
        value = int(value) if ok and integer else value
    if ok and value in also:
        return value
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return value
    if low is not None and high is not None:
        valid = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        valid = f"{'an integer' if integer else 'a number'} in {valid}"
    elif low is not None:
        sign = ">" if low_open else ">="
        valid = f"{'an integer' if integer else 'a finite number'} {sign} {low:g}"
    else:
        valid = "an integer" if integer else "a finite number"
    valid += "".join(f", or {extra}" for extra in also)
    raise ConfigError(f"{path}: {value!r} is not valid; {valid}{why}.")


def shown(value: Any) -> str:
    return "null" if value is None else f"{kind(value)} {value!r}"


def kind(value: Any) -> str:
    names = {
        type(None): "null",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        tuple: "a list",
        dict: "a mapping",
    }
    return names.get(type(value), f"a {type(value).__name__}")

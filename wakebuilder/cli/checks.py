"""Option values checked at the CLI boundary: one-line errors naming the option (and its WB_* variable).

Click's own range types accept ``nan`` and ``inf`` and print a usage block; these
types refuse non-finite numbers, take upper bounds, and fail with one line
``wb: error: --OPTION VALUE (from WB_VAR): reason`` and exit code 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import IO, Any

import click
from click.core import ParameterSource


class OptionError(click.ClickException):
    """A bad option value: printed as one ``wb: error:`` line, exit code 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"wb: error: {self.format_message()}", err=True, file=file)


def option_label(ctx: click.Context | None, param: click.Parameter | None, value: Any) -> str:
    """``--name VALUE`` (``NAME VALUE`` for an argument), plus ``(from WB_...)`` when the value came from the
    environment."""
    if isinstance(param, click.Argument):
        name = param.human_readable_name
    else:
        name = max(param.opts, key=len) if param is not None and param.opts else "value"
    label = f"{name} {value!r}" if isinstance(value, str) else f"{name} {value}"
    if ctx is not None and param is not None and param.name is not None:
        if ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT:
            envvar = param.envvar or (
                f"{ctx.auto_envvar_prefix}_{param.name.upper()}" if ctx.auto_envvar_prefix else None
            )
            if envvar:
                label += f" (from {envvar if isinstance(envvar, str) else envvar[0]})"
    return label


def fail(ctx: click.Context | None, param: click.Parameter | None, value: Any, reason: str) -> None:
    """Raise the one-line option error."""
    raise OptionError(f"{option_label(ctx, param, value)}: {reason}")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "-inf" if lo is None else _number(lo)
    right = "inf" if hi is None else _number(hi)
    return f"{'(' if lo_open or lo is None else '['}{left}, {right}{')' if hi_open or hi is None else ']'}"


class FloatIn(click.FloatRange):
    """A finite float within bounds (``click.FloatRange`` that also refuses nan/inf)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            fail(ctx, param, value, "expected a number")
        if not math.isfinite(number):
            fail(ctx, param, value, "must be a finite number")
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            fail(ctx, param, value, f"must be in {_bounds(self.min, self.max, self.min_open, self.max_open)}")


class IntIn(click.IntRange):
    """An integer within bounds, failing with one line."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
                fail(ctx, param, value, "expected a whole number")
            fail(ctx, param, value, f"must be in {_bounds(self.min, self.max, self.min_open, self.max_open)}")


class RangePair(click.ParamType):
    """``MIN,MAX`` (or one value) -> a float pair with MIN <= MAX, both finite and within bounds."""

    name = "min,max"

    def __init__(self, unit: str, lo: float, hi: float, *, example: str) -> None:
        self.unit, self.lo, self.hi, self.example = unit, lo, hi, example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        low, _, high = str(value).partition(",")
        try:
            pair = (float(low), float(high or low))
        except ValueError:
            fail(ctx, param, value, f"expected MIN,MAX in {self.unit}, e.g. {self.example}")
        if not all(math.isfinite(v) for v in pair):
            fail(ctx, param, value, "MIN and MAX must be finite numbers")
        if pair[0] > pair[1]:
            fail(ctx, param, value, f"MIN is above MAX; write it low,high, e.g. {self.example}")
        if pair[0] < self.lo or pair[1] > self.hi:
            fail(ctx, param, value, f"expected values within {self.lo:g},{self.hi:g} {self.unit}")
        return pair


class InPath(click.Path):
    """An input path with ``click.Path``'s checks (it exists; a file, or a folder), failing with one line that names
    it and the fix instead of click's usage block."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            path = Path(str(value))
            if not path.exists():
                reason = "not found; check the path"
            elif path.is_dir() and not self.dir_okay:
                reason = "is a folder; give a file"
            elif not path.is_dir() and not self.file_okay:
                reason = "is a file; give a folder"
            else:  # unreadable, unwritable: click's own words
                reason = exc.message
            fail(ctx, param, value, reason)


class OutPath(click.Path):
    """An output path whose folder can exist: no part of it (nor the path itself, for a folder) is a file."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = Path(str(value))
        for parent in [path, *path.parents] if not self.file_okay else list(path.parents):
            if parent.exists() and not parent.is_dir():
                fail(ctx, param, value, f"{parent} is a file, so it cannot hold this output; choose another")
        if self.file_okay and not self.dir_okay and path.is_dir():
            fail(ctx, param, value, "is a directory; give a file path")
        return super().convert(value, param, ctx)


def ordered(
    ctx: click.Context, low_name: str, high_name: str, low: float, high: float
) -> None:
    """Fail when two options that bound a range arrive in the wrong order."""
    if low > high:
        params = {p.name: p for p in ctx.command.params}
        low_label = option_label(ctx, params.get(low_name), low)
        high_label = option_label(ctx, params.get(high_name), high)
        raise OptionError(f"{low_label} is above {high_label}; the first must not exceed the second")

"""Checks of single values read from files edited by hand or passed to the library: their kind and bounds.

Low level on purpose (it imports nothing of wakebuilder), so the model folder's readers (``modeldir``) and the
stream settings' checks (``streaming``) share one definition of a usable number.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def finite_number(value: Any, *, low: float = -math.inf, high: float = math.inf) -> bool:
    """Whether ``value`` is a number that is not a bool, NaN, infinite or past a float's range (what JSON edited
    by hand may hold instead: it keeps an integer such as 10**400 as written), within ``low``..``high`` (both
    included)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and low <= number <= high

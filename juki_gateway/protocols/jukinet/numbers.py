"""Check digits, 個人番号 generation, and the 住民票コード pool the CS draws from.

機構's number generation hands out 個人番号 that carry a valid check digit and are never reused
(the caller supplies a predicate saying whether a number was already issued, backed by the
store's unique index); 機構 also hands a CS batches of unused 住民票コード, which the CS keeps in a
:class:`JuminhyoCodePool` and draws from at random, warning when the pool runs low.
Randomness is injected (``random.Random``) so tests are reproducible.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Iterable

from juki_gateway.protocols.jukinet.errors import (
    BadCheckDigit,
    NumberSpaceExhausted,
    PoolExhausted,
)

_KOJIN_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_JUMINHYO_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_MUNICIPALITY_WEIGHTS = (6, 5, 4, 3, 2)


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    # sum of digit × weight over the ASCII codes: Σ(c − 48)·w = Σ c·w − 48·Σ w (hot path).
    total: int = sum(map(operator.mul, digits.encode("ascii"), weights))
    return total - 48 * sum(weights)


def _mod11_check(digits: str, weights: tuple[int, ...]) -> int:
    if len(digits) != len(weights):
        raise ValueError("wrong number of digits")
    r = _weighted(digits, weights) % 11
    return 0 if r <= 1 else 11 - r


def kojin_bango_check_digit(first11: str) -> int:
    """The check digit of a 個人番号 from its first 11 digits (総務省令第85号 第5条)."""
    return _mod11_check(first11, _KOJIN_WEIGHTS)


def juminhyo_code_check_digit(first10: str) -> int:
    """The check digit of a 住民票コード from its first 10 digits (the project's documented rule)."""
    return _mod11_check(first10, _JUMINHYO_WEIGHTS)


def municipality_code_check_digit(first5: str) -> int:
    """The check digit of a 地方公共団体コード: last digit of 11 − (weighted sum mod 11)."""
    if len(first5) != 5:
        raise ValueError("wrong number of digits")
    r = _weighted(first5, _MUNICIPALITY_WEIGHTS) % 11
    return (11 - r) % 10


def _validate(value: str, length: int, what: str, check: Callable[[str], int]) -> str:
    if len(value) != length or not value.isascii() or not value.isdigit():
        raise BadCheckDigit(f"{what} must be {length} ASCII digits, got {value!r}")
    if check(value[:-1]) != int(value[-1]):
        raise BadCheckDigit(f"{what} {value} has a wrong check digit")
    return value


def validate_kojin_bango(value: str) -> str:
    """Return ``value`` if it is a 12-digit 個人番号 with a valid check digit, else raise."""
    return _validate(value, 12, "個人番号", kojin_bango_check_digit)


def validate_juminhyo_code(value: str) -> str:
    """Return ``value`` if it is an 11-digit 住民票コード with a valid check digit, else raise."""
    return _validate(value, 11, "住民票コード", juminhyo_code_check_digit)


def validate_municipality_code(value: str) -> str:
    """Return ``value`` if it is a 6-digit 地方公共団体コード with a valid check digit, else raise."""
    return _validate(value, 6, "市町村コード", municipality_code_check_digit)


def make_kojin_bango(first11: str) -> str:
    """A full 個人番号 from its first 11 digits."""
    return first11 + str(kojin_bango_check_digit(first11))


def make_juminhyo_code(first10: str) -> str:
    """A full 住民票コード from its first 10 digits."""
    return first10 + str(juminhyo_code_check_digit(first10))


class NumberGenerator:
    """Draws new, valid, never-reused numbers (個人番号 or 住民票コード) at random.

    ``is_used`` answers whether a number was ever issued (the store's unique index is the
    authority; the caller also records each issued number before handing it out).
    """

    def __init__(
        self,
        kind: str,
        rng: random.Random,
        is_used: Callable[[str], bool],
        *,
        max_attempts: int = 1000,
    ) -> None:
        self._make: Callable[[str], str]
        if kind == "kojin_bango":
            self._body_digits, self._make = 11, make_kojin_bango
        elif kind == "juminhyo_code":
            self._body_digits, self._make = 10, make_juminhyo_code
        else:
            raise ValueError(f"unknown number kind {kind!r}")
        self.kind = kind
        self._rng = rng
        self._is_used = is_used
        self._max_attempts = max_attempts

    def draw(self) -> str:
        """One new number; raises :class:`NumberSpaceExhausted` if none is found in time."""
        for _ in range(self._max_attempts):
            body = "".join(str(self._rng.randrange(10)) for _ in range(self._body_digits))
            if body == "0" * self._body_digits:
                continue  # all zeros is never issued
            number = self._make(body)
            if not self._is_used(number):
                return number
        raise NumberSpaceExhausted(
            f"no unused {self.kind} found after {self._max_attempts} random draws"
        )

    def draw_many(self, count: int) -> list[str]:
        """``count`` distinct new numbers."""
        seen: set[str] = set()
        out: list[str] = []
        while len(out) < count:
            number = self.draw()
            if number not in seen:
                seen.add(number)
                out.append(number)
        return out


class JuminhyoCodePool:
    """The CS's pool of unused 住民票コード: hand-out at random, low-water warning."""

    def __init__(self, codes: Iterable[str], rng: random.Random, *, low_water: int) -> None:
        self._codes = [validate_juminhyo_code(c) for c in codes]
        self._rng = rng
        self.low_water = low_water

    def __len__(self) -> int:
        return len(self._codes)

    @property
    def is_low(self) -> bool:
        """True when the pool holds no more than the low-water mark: time to ask 機構 for more."""
        return len(self._codes) <= self.low_water

    def add(self, codes: Iterable[str]) -> None:
        """Add a batch received from 機構 (check digits validated)."""
        have = set(self._codes)
        for c in codes:
            validate_juminhyo_code(c)
            if c not in have:
                have.add(c)
                self._codes.append(c)

    def take(self) -> str:
        """Remove and return one code chosen at random; raises when the pool is empty."""
        if not self._codes:
            raise PoolExhausted("the 住民票コード pool is empty: ask 機構 for a new batch")
        i = self._rng.randrange(len(self._codes))
        self._codes[i], self._codes[-1] = self._codes[-1], self._codes[i]
        return self._codes.pop()

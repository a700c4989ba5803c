"""Check digits of the three check-digit codes, and generators of valid codes for synthetic data.

Formulas (brief §4):

- 個人番号 (12 digits): weights 6,5,4,3,2,7,6,5,4,3,2 on the first 11 digits; r = sum mod 11;
  check = 0 if r <= 1 else 11 - r (総務省令第85号 第5条).
- 住民票コード (11 digits): weights 5,4,3,2,7,6,5,4,3,2 on the first 10 digits (2..7 cycling from
  the rightmost); check = 0 if r <= 1 else 11 - r. The ordinance (総務省告示第436号) was not at hand:
  this is the project's documented assumption.
- 地方公共団体コード (6 digits): weights 6,5,4,3,2 on the first 5; check = last digit of (11 - r).

:data:`CHECK_SCHEMES` describes each as data (weights and the residue → check-digit table), which
the fast record codec turns into one inline expression over the raw bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckScheme:
    """A weighted mod-11 check-digit scheme: ``digits`` long, the last digit checks the rest."""

    name: str
    label: str
    digits: int
    weights: tuple[int, ...]
    check_by_residue: tuple[int, ...]  # residue r (0..10) -> check digit

    def residue(self, body: str) -> int:
        """The weighted sum of ``body`` (the digits before the check digit) mod 11."""
        return sum(int(c) * w for c, w in zip(body, self.weights, strict=True)) % 11

    def check_digit(self, body: str) -> int:
        """The check digit for ``body``, which must be ``digits - 1`` ASCII digits."""
        if len(body) != self.digits - 1 or not (body.isascii() and body.isdigit()):
            raise ValueError(f"{self.name}: need {self.digits - 1} digits, got {body!r}")
        return self.check_by_residue[self.residue(body)]

    def is_valid(self, code: str) -> bool:
        """True when ``code`` is ``digits`` ASCII digits with a correct check digit."""
        if len(code) != self.digits or not (code.isascii() and code.isdigit()):
            return False
        return self.check_by_residue[self.residue(code[:-1])] == int(code[-1])

    def generate(self, rng: random.Random, prefix: str = "") -> str:
        """A valid code whose leading digits are ``prefix``, the rest drawn from ``rng``."""
        fill = self.digits - 1 - len(prefix)
        if fill < 0:
            raise ValueError(f"{self.name}: prefix {prefix!r} too long")
        body = prefix + "".join(rng.choice("0123456789") for _ in range(fill))
        return body + str(self.check_digit(body))


_MOD11 = tuple(0 if r <= 1 else 11 - r for r in range(11))

KOJIN_BANGO = CheckScheme(
    "kojin_bango", "個人番号", 12, (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2), _MOD11
)
JUMINHYO_CODE = CheckScheme(
    "juminhyo_code", "住民票コード", 11, (5, 4, 3, 2, 7, 6, 5, 4, 3, 2), _MOD11
)
LG_CODE = CheckScheme(
    "lg_code", "地方公共団体コード", 6, (6, 5, 4, 3, 2), tuple((11 - r) % 10 for r in range(11))
)

CHECK_SCHEMES: dict[str, CheckScheme] = {
    s.name: s for s in (KOJIN_BANGO, JUMINHYO_CODE, LG_CODE)
}


def kojin_bango_check_digit(first11: str) -> int:
    """The 個人番号 check digit of its first 11 digits."""
    return KOJIN_BANGO.check_digit(first11)


def juminhyo_code_check_digit(first10: str) -> int:
    """The 住民票コード check digit of its first 10 digits."""
    return JUMINHYO_CODE.check_digit(first10)


def lg_code_check_digit(first5: str) -> int:
    """The 地方公共団体コード check digit of its first 5 digits."""
    return LG_CODE.check_digit(first5)


def generate_kojin_bango(rng: random.Random) -> str:
    """A random valid 個人番号."""
    return KOJIN_BANGO.generate(rng)


def generate_juminhyo_code(rng: random.Random) -> str:
    """A random valid 住民票コード."""
    return JUMINHYO_CODE.generate(rng)


def generate_lg_code(rng: random.Random, prefecture: str | None = None) -> str:
    """A random valid 市町村コード, inside ``prefecture`` (2 digits) when given."""
    return LG_CODE.generate(rng, prefecture or "")

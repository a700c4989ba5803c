"""Optional dependencies: each is imported where it is first needed, through :func:`require`.

The daemon, the certificates and the SQLite store need only the core dependencies. Two jobs
need more, installed as extras of the package (``pyproject.toml``):

* ``sim``: faker, for the simulators' synthetic population (``simulate``, ``capture``,
  ``conformance``);
* ``postgres``: psycopg 3, for a store on PostgreSQL (``[store] url``, ``store_url`` or
  ``--db postgresql+psycopg://…``).

When one is missing the command ends with one line naming the extra to install
(:class:`MissingExtra`, exit status 1), never an ``ImportError`` traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from juki_gateway.errors import JukiError

#: The extra that provides each optional module, and what it is needed for.
EXTRAS: dict[str, tuple[str, str]] = {
    "faker": ("sim", "the simulators' synthetic population"),
    "psycopg": ("postgres", "a PostgreSQL store"),
}


class MissingExtra(JukiError):
    """An optional dependency the command needs is not installed (the message names the extra).
    Never sent to a peer: a daemon without the driver of its store does not start."""

    code = "missing_extra"


def require(module: str) -> ModuleType:
    """Import ``module`` (a key of :data:`EXTRAS`), or raise :class:`MissingExtra` naming the
    extra that installs it."""
    extra, purpose = EXTRAS[module]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # psycopg itself may import and fail on its C part or libpq: say which one failed
        what = module if exc.name in (None, module) else f"{module} ({exc.name})"
        raise MissingExtra(f"{purpose} needs {what}, which cannot be imported: "
                           f"pip install 'juki-gateway[{extra}]'") from None

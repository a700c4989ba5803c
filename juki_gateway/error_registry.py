"""Every error class of the project, in one registry built from an explicit list of modules.

:class:`~juki_gateway.errors.JukiError` is subclassed where each error is raised: the codec, the
links, the store, the certificates, the daemon, the command line and the simulators. This module
sits above all of them: it imports each module that defines an error class
(:data:`ERROR_MODULES`, listed by hand) and :func:`error_classes` collects what they define.
Nothing in the library imports it at run time; ``tests/test_error_registry.py`` checks that the
list misses no module and that wire codes and code names are unique across the project.

Wire code families: 2xxx the codec and the frame channel, 3xxx every endpoint's session, 51xx
the Juki-net links, 6xxx the intermediate server (61xx–62xx its query outcomes, ``Reason``),
91xx the store, the certificates and TLS, 9999 an error with no code of its own.
"""

from __future__ import annotations

from types import ModuleType

from juki_gateway import errors, extras
from juki_gateway.certs import identity, pki
from juki_gateway.cli import admin_client, storeopts
from juki_gateway.cli import audit as cli_audit
from juki_gateway.cli import jukinet as cli_jukinet
from juki_gateway.cli import serve as cli_serve
from juki_gateway.cli import simulate as cli_simulate
from juki_gateway.codecs import errors as codec_errors
from juki_gateway.errors import JukiError
from juki_gateway.gateway import service as gateway_service
from juki_gateway.gateway import tls
from juki_gateway.gateway.intermediate import admin, service
from juki_gateway.gateway.jukinet import nodestore, requests
from juki_gateway.protocols import channel, session
from juki_gateway.protocols.intermediate import crypto, fugo
from juki_gateway.protocols.intermediate import errors as ims_errors
from juki_gateway.protocols.jukinet import errors as jukinet_errors
from juki_gateway.registry_store import anchor, backup, engine, residents
from juki_gateway.simulators import capture, scenario, season
from juki_gateway.simulators import client as simulator_client

#: Every module that defines a subclass of JukiError, lowest layer first.
ERROR_MODULES: tuple[ModuleType, ...] = (
    errors,
    extras,
    codec_errors,
    channel,
    session,
    jukinet_errors,
    ims_errors,
    crypto,
    fugo,
    engine,
    residents,
    backup,
    anchor,
    storeopts,
    identity,
    pki,
    tls,
    gateway_service,
    requests,
    nodestore,
    service,
    admin,
    admin_client,
    cli_audit,
    cli_jukinet,
    cli_serve,
    cli_simulate,
    capture,
    simulator_client,
    scenario,
    season,
)

#: Wire codes moved so that no two errors share one: (code name, old, new, why), for peers that
#: matched on the old number.
RENUMBERED: tuple[tuple[str, int, int, str], ...] = (
    ("bad_identity", 9101, 9104,
     "9101 was also `store_unavailable`'s; the certificate errors are 9102–9104"),
)


def defined_in(module: ModuleType) -> list[type[JukiError]]:
    """The error classes ``module`` defines itself (not those it imports), in definition order."""
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, JukiError)
            and value.__module__ == module.__name__]


def error_classes() -> tuple[type[JukiError], ...]:
    """Every error class of the project (JukiError included), by wire code, then code, then name."""
    found = {cls for module in ERROR_MODULES for cls in defined_in(module)}
    return tuple(sorted(found, key=lambda c: (c.wire_code, c.code, c.__qualname__)))


def own_wire_code(cls: type[JukiError]) -> int | None:
    """The wire code ``cls`` sends, or None when it has none of its own: it inherits the base
    class's 9999 (an error never meant for a peer), or sets its codes per instance."""
    if "wire_code" in vars(cls):
        return cls.wire_code
    return None if cls.wire_code == JukiError.wire_code else cls.wire_code

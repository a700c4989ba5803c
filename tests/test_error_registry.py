"""One registry of every error class: it misses none, and wire codes and code names are unique."""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict
from collections.abc import Iterator

import juki_gateway
from juki_gateway import error_registry
from juki_gateway.cli.admin_client import RemoteActionFailed
from juki_gateway.cli.storeopts import SchemaOutdated
from juki_gateway.codecs import errors as codec_errors
from juki_gateway.errors import JukiError
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.jukinet import errors as jukinet_errors

#: Wire codes deliberately shared, by the class that reuses another's code: the reason.
SHARED_WIRE_CODES: dict[type[JukiError], str] = {
    SchemaOutdated: "a store error the command line reports before it uses the store; it never "
                    "reaches a peer and keeps the family's generic store code 9100",
}
#: Code names deliberately shared, by name: the reason.
SHARED_CODES: dict[str, str] = {
    "bad_check_digit": "the Juki-net links' refusal (5103) of the codec's check-digit failure "
                       "(2203) keeps its name; the wire code tells the layer",
    "search_too_broad": "rule R3, refused by the links (5102) and by the store's search API "
                        "(9110) under one name",
}
#: Classes without a code name of their own: the reason.
NO_OWN_CODE: dict[type[JukiError], str] = {
    RemoteActionFailed: "carries the daemon's code, wire code and exit code per instance",
}


def _every_module() -> Iterator[str]:
    for info in pkgutil.walk_packages(juki_gateway.__path__, "juki_gateway."):
        # migration scripts run inside alembic only; __main__ modules run their command
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        yield info.name


def _subclasses(cls: type[JukiError]) -> Iterator[type[JukiError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def test_registry_holds_every_error_class_of_the_project() -> None:
    """After importing every module of the package, each JukiError subclass it defines is in the
    registry, which lists each module that defines one and no other."""
    for name in _every_module():
        importlib.import_module(name)
    defined = {c for c in _subclasses(JukiError) if c.__module__.startswith("juki_gateway.")}
    registry = error_registry.error_classes()
    assert set(registry) == defined
    assert len(registry) == len(defined)
    modules = {c.__module__ for c in defined}
    assert [m.__name__ for m in error_registry.ERROR_MODULES if m.__name__ not in modules] == []
    assert len(error_registry.ERROR_MODULES) == len(modules)


def test_wire_codes_are_unique_across_the_project() -> None:
    """No two error classes and query outcome reasons send one wire code, except the listed,
    deliberate reuses; every wire code has four digits."""
    by_code: dict[int, list[str]] = defaultdict(list)
    for cls in error_registry.error_classes():
        code = error_registry.own_wire_code(cls)
        if code is not None and cls not in SHARED_WIRE_CODES:
            by_code[code].append(f"{cls.__module__}.{cls.__qualname__}")
    for reason in Reason:
        if reason.wire_code:  # 0 = answered, no refusal
            by_code[reason.wire_code].append(f"Reason.{reason.name}")
    assert {code: names for code, names in by_code.items() if len(names) > 1} == {}
    assert all(1000 <= code <= 9999 for code in by_code)
    for cls in SHARED_WIRE_CODES:
        assert "wire_code" not in vars(cls), cls  # it reuses a parent's code, as its reason says
        assert error_registry.own_wire_code(cls) in by_code


def test_code_names_are_unique_across_the_project() -> None:
    """Every error class names its own code, and no two error classes or query outcome reasons
    share a code name, except the listed, deliberate ones (each shared by exactly two)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for cls in error_registry.error_classes():
        if cls in NO_OWN_CODE:
            assert "code" not in vars(cls)
            continue
        assert "code" in vars(cls), f"{cls.__qualname__} has no code of its own"
        by_name[cls.code].append(f"{cls.__module__}.{cls.__qualname__}")
    for reason in Reason:
        by_name[reason.code].append(f"Reason.{reason.name}")
    shared = {name: names for name, names in by_name.items() if len(names) > 1}
    assert set(shared) == set(SHARED_CODES)
    assert all(len(names) == 2 for names in shared.values())


def test_documented_families_hold_every_class_of_their_family() -> None:
    """The error tables of docs/wire-format.md and docs/messages.md list every codec error and
    every Juki-net link error of the registry (the base class of the links' refusals aside), and
    docs/intermediate.md every error with a 6xxx wire code."""
    from juki_gateway.docs.intermediate import render as intermediate_doc

    registry = error_registry.error_classes()
    assert set(codec_errors.ERROR_CLASSES) == {
        c for c in registry if issubclass(c, codec_errors.CodecError)}
    assert set(jukinet_errors.ERROR_CLASSES) == {
        c for c in registry if issubclass(c, jukinet_errors.JukinetError)
    } - {jukinet_errors.JukinetError}
    text = intermediate_doc()
    family = [(c, code) for c in registry
              if (code := error_registry.own_wire_code(c)) is not None and 6000 <= code < 7000]
    assert family
    for cls, code in family:
        assert f"| {code:04d} | `{cls.code}` |" in text, cls


def test_error_codes_document_lists_every_class_and_reason() -> None:
    """docs/error-codes.md has a row for each registry class (with its wire code when it has
    one) and for each refusing or holding query outcome reason."""
    from pathlib import Path

    from juki_gateway.docs import error_codes

    text = error_codes.render()
    assert (Path(__file__).resolve().parent.parent / "docs" / "error-codes.md").read_text(
        encoding="utf-8") == text
    for cls in error_registry.error_classes():
        code = error_registry.own_wire_code(cls)
        row = (f"| {code:04d} | `{cls.code}` | `{cls.__qualname__}` |" if code is not None
               else f"| `{cls.code}` | `{cls.__qualname__}` |")
        assert row in text, cls
    for reason in Reason:
        if reason.wire_code:
            assert f"| {reason.wire_code:04d} | `{reason.code}` | `Reason.{reason.name}` |" in text


def test_renumbered_codes_name_the_current_wire_code() -> None:
    """Each renumbered code name is sent with its new wire code now, and its old number is no
    longer that name's."""
    by_name = {cls.code: error_registry.own_wire_code(cls) for cls in error_registry.error_classes()
               if cls not in NO_OWN_CODE and cls.code not in SHARED_CODES}
    assert error_registry.RENUMBERED
    for name, old, new, _why in error_registry.RENUMBERED:
        assert by_name[name] == new and old != new

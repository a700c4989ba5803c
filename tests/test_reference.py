"""The fast generated codec agrees with the construct reference path, on any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juki_gateway.codecs.errors import CodecError
from juki_gateway.codecs.layouts import CODEC_LAYOUT_NAMES, RECORD_LAYOUTS
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.reference import ReferenceCodec
from juki_gateway.protocols.catalogue import CATALOGUE, LAYOUTS
from tests.strategies import records

#: the layouts a link carries as message bodies are run with its profile; the intermediate
#: server's other tables (permits, the permission list, answer items) with "intermediate"
BODY_PROFILE = {spec.body_layout: spec.profile for spec in CATALOGUE.values() if spec.body_layout}
#: the body layouts the links register (Juki-net's and the intermediate server's)
LINK_CASES = [(layout, BODY_PROFILE.get(layout, "intermediate")) for layout in LAYOUTS
              if layout not in CODEC_LAYOUT_NAMES]
CASES = [(layout, profile) for layout in CODEC_LAYOUT_NAMES
         for profile in ("jukinet", "intermediate")] + LINK_CASES
VALUE_CASES = [(layout, "jukinet") for layout in RECORD_LAYOUTS] + LINK_CASES
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn: Any, arg: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(arg))
    except CodecError as exc:
        return ("error", (type(exc).__name__, exc.field))


@pytest.mark.parametrize(("layout", "profile"), CASES)
def test_fast_and_reference_agree_on_valid_records(layout: str, profile: str) -> None:
    """On valid records both paths build the same bytes and decode the same values."""
    fast, ref = get_codec(layout, profile), ReferenceCodec(layout, profile)

    @SETTINGS
    @given(records(LAYOUTS[layout]))
    def check(rec: dict[str, Any]) -> None:
        data = fast.encode(rec)
        assert ref.encode(rec) == data
        assert ref.decode(data) == fast.decode(data)

    check()


@pytest.mark.parametrize(("layout", "profile"), CASES)
def test_fast_and_reference_agree_on_corrupted_records(layout: str, profile: str) -> None:
    """On valid records with random bytes overwritten, both accept or both reject at the same field."""
    fast, ref = get_codec(layout, profile), ReferenceCodec(layout, profile)
    n = fast.record_length

    @SETTINGS
    @given(records(LAYOUTS[layout]), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 255)), min_size=1, max_size=4))
    def check(rec: dict[str, Any], edits: list[tuple[int, int]]) -> None:
        data = bytearray(fast.encode(rec))
        for pos, byte in edits:
            data[pos] = byte
        assert _outcome(fast.decode, bytes(data)) == _outcome(ref.decode, bytes(data))

    check()


@pytest.mark.parametrize(("layout", "profile"), VALUE_CASES)
def test_random_bytes_only_raise_codec_errors(layout: str, profile: str) -> None:
    """Random bytes of any length give a record or a CodecError, the same on both paths."""
    fast, ref = get_codec(layout, profile), ReferenceCodec(layout, profile)
    n = fast.record_length

    @SETTINGS
    @given(st.one_of(st.binary(min_size=n, max_size=n), st.binary(max_size=n + 5)))
    def check(data: bytes) -> None:
        assert _outcome(fast.decode, data) == _outcome(ref.decode, data)

    check()


@pytest.mark.parametrize(("layout", "profile"), VALUE_CASES)
def test_fast_and_reference_agree_on_bad_values(layout: str, profile: str) -> None:
    """Records with a value of the wrong kind are refused by both paths at the same field."""
    fast, ref = get_codec(layout, profile), ReferenceCodec(layout, profile)
    fields = [f.name for f in LAYOUTS[layout].fields]

    @SETTINGS
    @given(records(LAYOUTS[layout]), st.sampled_from(fields),
           st.one_of(st.none(), st.integers(-5, 10**13), st.text(max_size=12), st.lists(st.integers(0, 5)),
                     st.binary(max_size=80)))
    def check(rec: dict[str, Any], field: str, value: Any) -> None:
        rec = dict(rec, **{field: value})
        assert _outcome(fast.encode, rec) == _outcome(ref.encode, rec)

    check()

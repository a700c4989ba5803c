"""Pure core of the intermediate server: layouts, permits, permission list, sealing, 項番 table."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.answer import (
    answer_plaintext,
    decode_query_result,
    open_answer,
    query_result_body,
    seal_answer,
)
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.errors import (
    FukuhonFieldInvalid,
    MalformedMessage,
    PermissionListBadSignature,
    PermissionListMalformed,
    PermissionListStale,
)
from juki_gateway.protocols.intermediate.items import (
    ANSWER_ITEMS_LAYOUT,
    check_fukuhon_values,
    items_to_mask,
    mask_to_items,
)
from juki_gateway.protocols.intermediate.kouban import KOUBAN_NUMBERS, KOUBAN_TABLE, kouban_row
from juki_gateway.protocols.intermediate.messages import (
    PERMIT_LAYOUT,
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permission_list import (
    PermissionEntry,
    PermissionListHolder,
)
from juki_gateway.protocols.intermediate.permit import decode_permit

from .helpers import (
    FUKUHON,
    NETWORK_KEY,
    PROVIDER,
    REQUESTER,
    REQUESTER_KEY,
    make_list,
    make_permit,
)


def test_kouban_table_has_the_sixty_rows_of_the_seed() -> None:
    """The 主務省令第2条 table holds the 60 項 of I 6 ②, from 1 to 166, with row 1 detailed."""
    assert len(KOUBAN_TABLE) == 60
    assert min(KOUBAN_NUMBERS) == 1 and max(KOUBAN_NUMBERS) == 166
    row = kouban_row(1)
    assert row is not None and row.requester == "厚生労働大臣"
    assert kouban_row(4) is None


def test_catalogue_record_lengths_match_layouts() -> None:
    """Every intermediate message type is in the one catalogue; its record length is its layout's."""
    from juki_gateway.codecs.record import get_codec
    from juki_gateway.protocols.catalogue import CATALOGUE, link_record_lengths

    lengths = link_record_lengths()
    for msg_type in ImsMessageType:
        spec = CATALOGUE[msg_type]
        assert spec.name == msg_type.name and spec.profile == "intermediate"
        if spec.byte_body:
            expected = 1
        else:
            assert spec.body_layout is not None
            expected = get_codec(spec.body_layout, "intermediate").record_length
        assert lengths[msg_type] == expected
        assert 0x0600 <= msg_type <= 0x06FF
    assert lengths[ImsMessageType.PERMISSION_LIST] == 1


def test_permit_round_trip_and_fixed_size() -> None:
    """A signed permit encodes to the fixed permit layout and decodes to an equal value."""
    permit = make_permit()
    data = permit.to_bytes()
    assert len(data) == PERMIT_LAYOUT.length
    back = decode_permit(data)
    assert back == permit
    assert back.signature_valid(NETWORK_KEY.public_key())


def test_permit_signature_detects_any_change() -> None:
    """Changing one signed field or signing with another key invalidates the permit."""
    permit = make_permit()
    public = NETWORK_KEY.public_key()
    assert not replace(permit, expires="20991231000000").signature_valid(public)
    assert not replace(permit, items=frozenset({"shimei"})).signature_valid(public)
    other = make_permit(key=ec.generate_private_key(ec.SECP256R1()))
    assert not other.signature_valid(public)
    assert not replace(permit, signature=b"\x00" * 64).signature_valid(public)


def test_permit_decode_rejects_bad_fields() -> None:
    """A permit whose 項番 is not digits is a malformed message, not a crash."""
    data = bytearray(make_permit().to_bytes())
    data[64:67] = b"1x3"
    with pytest.raises(MalformedMessage):
        decode_permit(bytes(data))


def test_item_masks_round_trip_and_reject_unknown_bits() -> None:
    """Item sets map to 16-bit masks and back (bits 15 and 16 are 通称 and 旧氏); a mask that is
    not 16 flags, or an unknown item, is refused."""
    items = frozenset({"shimei", "jusho", "ho30_45"})
    assert mask_to_items(items_to_mask(items)) == items
    assert mask_to_items("0" * 14 + "11") == {"tsusho", "kyuuji"}
    for bad in ("0" * 15 + "2", "0" * 17, "1" * 15):
        with pytest.raises(FukuhonFieldInvalid):
            mask_to_items(bad)
    with pytest.raises(FukuhonFieldInvalid):
        items_to_mask(["kojin_bango"])


def test_fukuhon_values_are_format_checked() -> None:
    """A 副本 with a bad date or an unknown item is refused with a specific error."""
    assert check_fukuhon_values(FUKUHON)["seibetsu"] == "2"
    with pytest.raises(FukuhonFieldInvalid, match="seinengappi"):
        check_fukuhon_values({**FUKUHON, "seinengappi": "1980041"})
    with pytest.raises(FukuhonFieldInvalid, match="unknown"):
        check_fukuhon_values({**FUKUHON, "kojin_bango": "123456789018"})


def test_permission_list_keeps_newest_valid_version() -> None:
    """The holder accepts a newer signed list and refuses older, equal and badly signed ones."""
    holder = PermissionListHolder(NETWORK_KEY.public_key())
    holder.offer(make_list(2).to_bytes())
    assert holder.current is not None and holder.current.version == 2
    with pytest.raises(PermissionListStale):
        holder.offer(make_list(1).to_bytes())
    with pytest.raises(PermissionListStale):
        holder.offer(make_list(2).to_bytes())
    forged = make_list(3, key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(PermissionListBadSignature):
        holder.offer(forged.to_bytes())
    tampered = bytearray(make_list(4).to_bytes())
    tampered[30] ^= 1
    with pytest.raises((PermissionListBadSignature, PermissionListMalformed)):
        holder.offer(bytes(tampered))
    assert holder.current.version == 2
    holder.offer(make_list(5).to_bytes())
    assert holder.current.version == 5


def test_permission_list_refuses_unknown_kouban_and_bad_length() -> None:
    """A list naming a 項 not provided here, or of the wrong length, is malformed."""
    holder = PermissionListHolder(NETWORK_KEY.public_key())
    bad = make_list(1, [PermissionEntry(REQUESTER, 4, frozenset({"shimei"}))])
    with pytest.raises(PermissionListMalformed, match="項 4"):
        holder.offer(bad.to_bytes())
    with pytest.raises(PermissionListMalformed):
        holder.offer(make_list(1).to_bytes()[:-1])


def test_permission_list_lookup_is_exact() -> None:
    """A (requester, 項番, items) triple is permitted only when all items are granted."""
    plist = make_list(1)
    assert plist.permits(REQUESTER, 1, frozenset({"shimei"}))
    assert not plist.permits(REQUESTER, 1, frozenset({"shimei", "seibetsu"}))
    assert not plist.permits(REQUESTER, 2, frozenset({"shimei"}))
    assert not plist.permits("other-org", 1, frozenset({"shimei"}))
    assert not plist.permits(REQUESTER, 1, frozenset())


def test_sealed_answer_opens_only_for_the_requester() -> None:
    """The requester opens exactly the permitted items; another key or a changed byte fails."""
    permit = make_permit(items=("shimei", "jusho"))
    sealed = seal_answer(permit, answer_plaintext(FUKUHON, permit.items))
    body = query_result_body(permit, QueryStatus.ANSWERED, Reason.ANSWERED, sealed)
    result = decode_query_result(body)
    assert open_answer(result, REQUESTER_KEY, PROVIDER) == {
        "shimei": FUKUHON["shimei"],
        "jusho": FUKUHON["jusho"],
    }
    with pytest.raises(crypto.DecryptionFailed):
        open_answer(result, ec.generate_private_key(ec.SECP256R1()), PROVIDER)
    broken = replace(result, sealed=result.sealed[:-1] + bytes([result.sealed[-1] ^ 1]))  # type: ignore[index]
    with pytest.raises(crypto.DecryptionFailed):
        open_answer(broken, REQUESTER_KEY, PROVIDER)


def test_held_and_refused_results_carry_no_data() -> None:
    """Held and refused results have an all-zero box and an empty item mask."""
    permit = make_permit()
    for status, reason in (
        (QueryStatus.HELD, Reason.HELD_FLAG),
        (QueryStatus.REFUSED, Reason.EXPIRED),
    ):
        body = query_result_body(permit, status, reason)
        result = decode_query_result(body)
        assert result.sealed is None and result.reason is reason
        assert body.count(0) >= len(body) - 100
    with pytest.raises(ValueError):
        query_result_body(permit, QueryStatus.HELD, Reason.HELD_FLAG, b"x")


def test_answer_record_has_constant_length() -> None:
    """One item or all items, the sealed answer has the same length."""
    one = seal_answer(make_permit(), answer_plaintext(FUKUHON, frozenset({"seibetsu"})))
    every = seal_answer(make_permit(), answer_plaintext(FUKUHON, frozenset(FUKUHON)))
    assert len(one) == len(every) == crypto.SEAL_OVERHEAD + ANSWER_ITEMS_LAYOUT.length


def test_signature_helpers_refuse_malformed_signatures() -> None:
    """Zero, short and foreign signatures never verify."""
    key = NETWORK_KEY.public_key()
    assert not crypto.verify(key, b"d", b"data", b"")
    assert not crypto.verify(key, b"d", b"data", bytes(64))
    sig = crypto.sign(NETWORK_KEY, b"d", b"data")
    assert crypto.verify(key, b"d", b"data", sig)
    assert not crypto.verify(key, b"e", b"data", sig)


def test_fast_masking_agrees_with_the_layout_path() -> None:
    """Masking a stored record by slices gives the same bytes as decode, select and encode."""
    import itertools

    from juki_gateway.protocols.intermediate.items import ITEM_KEYS, mask_record

    record = ANSWER_ITEMS_LAYOUT.encode({**dict.fromkeys(ITEM_KEYS, ""), **FUKUHON})
    for r in (1, 2, 5):
        for items in itertools.islice(itertools.combinations(ITEM_KEYS, r), 40):
            chosen = frozenset(items)
            assert mask_record(record, chosen) == answer_plaintext(FUKUHON, chosen)


def test_decoded_permit_signs_its_received_bytes() -> None:
    """A decoded permit's canonical bytes are the received bytes, and a flipped bit fails."""
    wire = make_permit().to_bytes()
    permit = decode_permit(wire)
    assert permit.to_bytes() == wire and permit.signature_valid(NETWORK_KEY.public_key())
    flipped = bytearray(wire)
    flipped[40] ^= 0x01  # inside the requester field, still printable ASCII
    assert not decode_permit(bytes(flipped)).signature_valid(NETWORK_KEY.public_key())
    changed = replace(permit, expires="20991231000000")
    assert changed.wire == b"" and not changed.signature_valid(NETWORK_KEY.public_key())


def test_fugo_differs_per_organisation_and_needs_a_valid_code() -> None:
    """The network's 符号 differs per organisation for one person; a bad 住民票コード is refused."""
    from juki_gateway.protocols.intermediate.fugo import BadJuminhyoCode, issue_fugo

    a = issue_fugo(b"s", "ims-172014", "24727059608")
    b = issue_fugo(b"s", "ims-131016", "24727059608")
    assert a != b and len(a) == 32 and a == issue_fugo(b"s", "ims-172014", "24727059608")
    with pytest.raises(BadJuminhyoCode):
        issue_fugo(b"s", "ims-172014", "24727059609")

"""The generated documents match the tables and the one message catalogue they come from."""

from __future__ import annotations

from pathlib import Path

from juki_gateway.codecs import docs
from juki_gateway.codecs.errors import ERROR_CLASSES
from juki_gateway.codecs.layouts import LAYOUTS
from juki_gateway.codecs.messages import CATALOGUE, body_record_lengths, load_link_catalogues
from juki_gateway.protocols.jukinet import docs as jukinet_docs
from juki_gateway.protocols.jukinet import errors as jukinet_errors
from juki_gateway.protocols.jukinet import layouts as jukinet_layouts
from juki_gateway.protocols.jukinet.messages import (
    ACCEPTS,
    BY_TYPE,
    JUKINET_MESSAGES,
    SEQUENCED_TYPES,
    JukinetMessage,
    record_lengths,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_wire_format_doc_is_current() -> None:
    """The committed document equals what the tables produce (run `make docs` when not)."""
    assert (DOCS / "wire-format.md").read_text(encoding="utf-8") == docs.render()


def test_message_catalogue_doc_is_current() -> None:
    """docs/messages.md equals what the catalogue renders (run `make docs` when not)."""
    assert (DOCS / "messages.md").read_text(encoding="utf-8") == jukinet_docs.render()


def test_wire_codes_are_unique_four_digit_numbers() -> None:
    """Every error class has its own 4-digit wire code."""
    codes = [cls.wire_code for cls in ERROR_CLASSES]
    assert len(set(codes)) == len(codes)
    assert all(1000 <= c <= 9999 for c in codes)
    assert len({cls.code for cls in ERROR_CLASSES}) == len(codes)


def test_jukinet_messages_are_catalogue_entries() -> None:
    """Each Juki-net type is registered in the one catalogue; the links' views are that very entry."""
    load_link_catalogues()
    assert set(JUKINET_MESSAGES) == {int(t) for t in JukinetMessage}
    for msg_type in JukinetMessage:
        spec = CATALOGUE[msg_type]
        assert JUKINET_MESSAGES[msg_type] is spec is BY_TYPE[msg_type]
        assert spec.name == msg_type.name and spec.profile == "jukinet" and spec.jp and spec.direction
    assert SEQUENCED_TYPES == {JukinetMessage.UPDATE_NOTIFY, JukinetMessage.SOUFUSAKI_BATCH,
                               JukinetMessage.MOVE_IN_NOTICE}


def test_jukinet_body_layouts_are_registered_codec_layouts() -> None:
    """Every Juki-net body layout is a codec layout run by get_codec and listed in wire-format.md."""
    rendered = docs.render()
    for name, layout in jukinet_layouts.LAYOUTS.items():
        assert LAYOUTS[name] is layout
        assert jukinet_layouts.codec_of(layout).layout is layout
        assert f"## Layout `{name}` — {layout.label}" in rendered
    for msg_type in JukinetMessage:
        assert f"| 0x{msg_type:04X} | {msg_type.name} |" in rendered


def test_link_decoder_table_is_the_catalogue_restricted_to_the_link() -> None:
    """The Juki-net frame decoder's lengths are the catalogue's, base types and Juki-net types only."""
    lengths = record_lengths()
    everything = body_record_lengths()
    assert lengths == {t: everything[t] for t in lengths}
    assert set(lengths) == {1, 2, 3, 4, 5} | {int(t) for t in JukinetMessage}
    assert lengths[JukinetMessage.UPDATE_NOTIFY] == 898 and lengths[JukinetMessage.CONSISTENCY_END] == 0


def test_catalogue_error_codes_are_the_links_own() -> None:
    """Every refusal a Juki-net entry names is one of the links' error classes; each class is named."""
    named = {cls for spec in JUKINET_MESSAGES.values() for cls in spec.errors}
    assert named <= set(jukinet_errors.ERROR_CLASSES)
    # 5106 (pool empty) is the CS's own refusal to its existing system; 5110 is any type an
    # endpoint does not serve: neither belongs to one message.
    unnamed = set(jukinet_errors.ERROR_CLASSES) - named
    assert unnamed == {jukinet_errors.PoolExhausted, jukinet_errors.UnexpectedMessage}
    requests = {t for t, spec in JUKINET_MESSAGES.items() if spec.responses != "—"}
    assert all(JUKINET_MESSAGES[t].errors for t in requests)


def test_catalogue_directions_are_the_links_authorization_table() -> None:
    """The Juki-net nodes authorize senders by the catalogue's directions, which keep R2 (the CS
    takes 本人確認情報 only from its own existing system) and name no answer type."""
    from juki_gateway.gateway.jukinet.inbound import ACCEPTS as NODE_ACCEPTS
    from juki_gateway.protocols.jukinet.messages import JukinetMessage
    from juki_gateway.protocols.jukinet.routing import Role

    assert NODE_ACCEPTS is ACCEPTS
    assert ACCEPTS[(Role.MUNICIPAL_CS, JukinetMessage.UPDATE_NOTIFY)] == {Role.KIZON_JUKI}
    assert ACCEPTS[(Role.KIKO, JukinetMessage.UPDATE_NOTIFY)] == {Role.PREFECTURE}
    answers = {t for t, spec in JUKINET_MESSAGES.items() if spec.responses == "—"}
    assert answers and not answers & {t for _, t in ACCEPTS}


def test_sequencing_contract_names_every_code_the_channel_decides() -> None:
    """docs/sequencing.md lists each refusal the frame channel and its adapters decide
    (code and wire code), and the sequencing refusal 5113, so a peer can implement them."""
    from juki_gateway.protocols.channel import CHANNEL_ERRORS
    from juki_gateway.protocols.jukinet.errors import BadSequenceNumber

    text = (DOCS / "sequencing.md").read_text(encoding="utf-8")
    for cls in (*CHANNEL_ERRORS, BadSequenceNumber):
        assert f"{cls.wire_code} `{cls.code}`" in text, cls

"""Errors of the Juki-net links, each with a stable ``code`` and a 4-digit ``wire_code``.

Wire codes 5100–5199 belong to the Juki-net links (docs/messages.md lists them); they are sent in
the body of ERROR and NACK frames, so a peer can tell a refused search from a sequence gap.
"""

from __future__ import annotations

from typing import ClassVar

from juki_gateway.errors import JukiError


class JukinetError(JukiError):
    """Base class of every deliberate refusal on a Juki-net link."""

    code: ClassVar[str] = "jukinet"
    wire_code: ClassVar[int] = 5100


class RefusedInStore:
    """Marks a refusal a node decides in its store while applying a sequenced frame (a check
    that needs what the store holds). The frame's work alone is rolled back and the receiver
    takes the frame back from acceptance: its number is expected again and its ERROR takes the
    place of the replies queued for it and for what followed (docs/sequencing.md). A mixin, not
    an error class of its own: the classes it marks keep their own codes."""


class SequenceGap(JukinetError):
    """An update notification skipped ahead of the next expected 更新順番号."""

    code = "sequence_gap"
    wire_code = 5101

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"sequence gap: expected 更新順番号 {expected}, got {got}")
        self.expected = expected
        self.got = got


class SearchTooBroad(JukinetError):
    """A 本人確認情報 search names no identifier and not 氏名 plus 生年月日 or a 住所 naming a 市区町村 (R3)."""

    code = "search_too_broad"
    wire_code = 5102


class BadCheckDigit(JukinetError):
    """A 個人番号, 住民票コード or 地方公共団体コード fails its check digit."""

    code = "bad_check_digit"
    wire_code = 5103


class WrongSender(JukinetError):
    """The peer's role or node may not send this message to this endpoint (R2)."""

    code = "wrong_sender"
    wire_code = 5104


class UnknownMunicipality(JukinetError):
    """A 転入通知 names a 市町村 no route is known for."""

    code = "unknown_municipality"
    wire_code = 5105


class PoolExhausted(JukinetError):
    """The CS's 住民票コード pool holds fewer codes than its existing system asked for."""

    code = "pool_exhausted"
    wire_code = 5106


class NumberSpaceExhausted(JukinetError):
    """No unused 個人番号 or 住民票コード could be drawn."""

    code = "number_space_exhausted"
    wire_code = 5107


class BadBody(JukinetError):
    """A message body field is malformed (wrong characters, bad date, unknown code)."""

    code = "bad_body"
    wire_code = 5108


class UnsortedStream(JukinetError):
    """A consistency-check stream is not strictly ascending by 住民票コード."""

    code = "unsorted_stream"
    wire_code = 5109


class UnexpectedMessage(JukinetError):
    """This endpoint role does not serve the message type it received."""

    code = "unexpected_message"
    wire_code = 5110


class LinkProtocolError(JukinetError):
    """The peer broke the link protocol (an ack for something never sent, lost committed data)."""

    code = "link_protocol"
    wire_code = 5111


class BadSequenceNumber(JukinetError):
    """A sequenced frame numbered 0, with no records, or running past the largest 更新順番号."""

    code = "bad_sequence_number"
    wire_code = 5113


class KojinBangoNotAuthentic(RefusedInStore, JukinetError):
    """機構 refuses a record whose 個人番号 is not the one it generated for that 住民票コード."""

    code = "kojin_bango_not_authentic"
    wire_code = 5114


class SoufusakiMismatch(RefusedInStore, JukinetError):
    """機構 refuses a 送付先 whose 基本4情報 differ from its own 本人確認情報 of that person."""

    code = "soufusaki_mismatch"
    wire_code = 5115


class JuminhyoCodeChangeRefused(RefusedInStore, JukinetError):
    """A 住民票コード変更 whose 旧住民票コード is missing, is the new code or is not a current resident here, or whose new 住民票コード is already used here; or a record of, or a 個人番号 request for, a 住民票コード a 住民票コード変更 retired.

    A missing 旧住民票コード, or one equal to the new code, is refused from the frame alone; the
    rest in the receiving node's store (its file decides what is current and what is used)."""

    code = "juminhyo_code_change_refused"
    wire_code = 5116


class TenshutsuShomeiUnknown(JukinetError):
    """The old CS keeps no 転出証明書情報 for that 住民票コード, or the 生年月日 read from the card
    is not the person's (the refusal does not say which)."""

    code = "tenshutsu_shomei_unknown"
    wire_code = 5117


class NotTokureiTenshutsu(JukinetError):
    """The person moved out with a paper 転出証明書, not by 特例転出: there is nothing to fetch."""

    code = "not_tokurei_tenshutsu"
    wire_code = 5118


class TenshutsuShomeiWrongRequester(JukinetError):
    """The 転出証明書情報 was asked for by another 市町村 than the 転出先 the person declared."""

    code = "tenshutsu_shomei_wrong_requester"
    wire_code = 5119


ERROR_CLASSES: tuple[type[JukinetError], ...] = (
    SequenceGap,
    SearchTooBroad,
    BadCheckDigit,
    WrongSender,
    UnknownMunicipality,
    PoolExhausted,
    NumberSpaceExhausted,
    BadBody,
    UnsortedStream,
    UnexpectedMessage,
    LinkProtocolError,
    BadSequenceNumber,
    KojinBangoNotAuthentic,
    SoufusakiMismatch,
    JuminhyoCodeChangeRefused,
    TenshutsuShomeiUnknown,
    NotTokureiTenshutsu,
    TenshutsuShomeiWrongRequester,
)

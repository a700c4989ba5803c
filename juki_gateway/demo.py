"""``make demo``: the main job end to end on the embedded defaults.

For now it shows the codec at work: a Kanazawa resident whose name holds 外字 (髙橋 﨑子, 𠮷田 太郎)
is encoded as 本人確認情報 and 送付先情報, the bytes are explained field by field, the records travel
in a frame through the sans-IO decoder one byte at a time, and are decoded back with their 外字
items (外字数, 外字フラグ, 代替文字 and positions) — under both link profiles.
"""

from __future__ import annotations

import argparse
import io
import json
import sys

from juki_gateway.cli.codec_cmd import cmd_explain
from juki_gateway.codecs.frame import Frame, FrameDecoder, encode_frame
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.samples import sample_honnin_kakunin, sample_soufusaki

GAIJI_KEYS = ("gaiji", "substitute", "seion")


def _show(title: str, rec: dict[str, object]) -> None:
    print(f"  {title}")
    for key, value in rec.items():
        if key in ("kanji_name", "address") or any(k in key for k in GAIJI_KEYS):
            print(f"    {key:32} {json.dumps(value, ensure_ascii=False)}")


def main() -> int:
    """Run the demo; grows with each capability of the gateway."""
    print("juki-gateway demo: fixed-length codecs with 外字\n")
    resident = sample_honnin_kakunin(1)  # 𠮷田 太郎, moved in from 千代田区
    honnin = get_codec("honnin-kakunin")
    data = honnin.encode(resident)
    print(f"1. 本人確認情報 of {resident['kanji_name']}: {len(data)} bytes; explained:\n")
    out = io.StringIO()
    cmd_explain(argparse.Namespace(layout="honnin-kakunin", profile="jukinet", file=None), io.BytesIO(data), out)
    print(out.getvalue())

    send = sample_soufusaki(0)  # 髙橋 﨑子
    print(f"2. 送付先情報 for {send['kanji_name']} (derived items computed by the encoder):")
    for profile in ("jukinet", "intermediate"):
        codec = get_codec("soufusaki", profile)
        _show(f"profile {profile}:", codec.decode(codec.encode(send)))

    body = get_codec("soufusaki").encode(send) + get_codec("soufusaki").encode(sample_soufusaki(1))
    ts = "20260401093000"
    frame = encode_frame(MessageType.ACK, "kiko", "cs-172014", seq=2, timestamp=ts)
    frame += encode_frame(0x0999, "kiko", "cs-172014", b"??", timestamp=ts)  # not in the catalogue
    frame += encode_frame(MessageType.NACK, "kiko", "cs-172014", encode_error(2203, "bad_check_digit",
                          "住民票コード 24727059609: check digit 9, expected 8"), record_count=1, seq=3, timestamp=ts)
    print(f"\n3. Two soufusaki records ({len(body)} bytes) decoded back from the wire:")
    for rec in get_codec("soufusaki").decode_many(body):
        _show(f"{rec['kanji_name']}:", {k: rec[k] for k in ("gaiji_flag", "kanji_name_gaiji_count",
                                                            "substitute_name", "substitute_name_positions",
                                                            "gaiji_pattern")})

    print("\n4. Frames (ACK, an unknown type, NACK) fed one byte at a time to the sans-IO decoder:")
    decoder = FrameDecoder()
    for b in frame:
        decoder.receive_data(bytes([b]))
        while (event := decoder.next_event()) is not None:
            kind = "frame" if isinstance(event, Frame) else f"rejected [{event.error.code}]"
            print(f"    {kind}: type 0x{event.header.msg_type:04X} {event.header.sender} -> "
                  f"{event.header.receiver} seq {event.header.seq}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

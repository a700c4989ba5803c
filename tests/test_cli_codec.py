"""The ``juki-gateway codec`` commands: layouts, encode, decode, explain and their exit codes."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from juki_gateway.cli import main
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.samples import SAMPLERS
from juki_gateway.errors import UsageError

VECTORS = Path(__file__).parent / "vectors"


class _Stdin:
    """A stand-in for sys.stdin with a binary ``buffer``."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def _run(argv: list[str], stdin: bytes, monkeypatch: pytest.MonkeyPatch,
         capsysbinary: pytest.CaptureFixture[bytes]) -> tuple[int, bytes, str]:
    monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    code = main(argv)
    out, err = capsysbinary.readouterr()
    return code, out, err.decode("utf-8")


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def test_layouts_json_lists_contiguous_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """layouts --json lists 36 and 59 fields, offsets contiguous, widths summing to the record length."""
    assert main(["codec", "layouts", "--json"]) == 0
    data = {lay["name"]: lay for lay in json.loads(capsys.readouterr().out)}
    assert len(data["honnin-kakunin"]["fields"]) == 36
    assert len(data["soufusaki"]["fields"]) == 59
    for lay in data.values():
        pos = 0
        for f in lay["fields"]:
            assert f["offset"] == pos and set(f) >= {"no", "name", "label", "offset", "width", "kind"}
            pos += f["width"]
        assert pos == lay["record_length"]


def test_layouts_table(capsys: pytest.CaptureFixture[str]) -> None:
    """layouts without --json prints one line per layout and per field."""
    assert main(["codec", "layouts"]) == 0
    out = capsys.readouterr().out
    assert "honnin-kakunin (本人確認情報): 898 bytes, 36 fields" in out and "kojin_bango" in out


def test_encode_decode_round_trip(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """encode then decode gives the records back with their derived items."""
    recs = [SAMPLERS["soufusaki"](i) for i in range(3)]
    code, binary, _ = _run(["codec", "encode", "--layout", "soufusaki"], _jsonl(recs), monkeypatch, capsysbinary)
    assert code == 0 and binary == get_codec("soufusaki").encode_many(recs)
    code, text, _ = _run(["codec", "decode", "--layout", "soufusaki"], binary, monkeypatch, capsysbinary)
    assert code == 0
    assert [json.loads(line) for line in text.decode().splitlines()] == [get_codec("soufusaki").complete(r) for r in recs]


@pytest.mark.parametrize(
    ("field", "value", "error_code"),
    [
        ("kojin_bango", "123456789019", "bad_check_digit"),
        ("juminhyo_code", "24727059609", "bad_check_digit"),
        ("lg_code", "172015", "bad_check_digit"),
        ("birth_date", "20250230", "bad_date"),
        ("sex", "5", "unknown_code"),
        ("change_reason", "77", "unknown_code"),
    ],
)
def test_encode_bad_value_exits_1_naming_line_and_field(
    field: str, value: str, error_code: str, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A bad value on line 2 writes nothing, exits 1 and names the line, the field and the reason."""
    recs = [SAMPLERS["honnin-kakunin"](0), dict(SAMPLERS["honnin-kakunin"](1), **{field: value})]
    code, out, err = _run(["codec", "encode", "--layout", "honnin-kakunin"], _jsonl(recs), monkeypatch, capsysbinary)
    assert code == 1 and out == b""
    assert err.count("\n") == 1 and f"[{error_code}]" in err
    assert "input line 2" in err and f"field {field}" in err and "Traceback" not in err


def test_encode_not_json(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """A line that is not JSON is reported with its number, exit 1."""
    code, out, err = _run(["codec", "encode", "--layout", "soufusaki"], b"{nope\n", monkeypatch, capsysbinary)
    assert code == 1 and out == b"" and "input line 1: not JSON" in err


def test_decode_bad_input_names_record_field_offset(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Corrupt binary gives one line with record index, field, offset and reason, exit 1."""
    data = bytearray((VECTORS / "honnin-kakunin.jukinet.bin").read_bytes())
    data[898 + 301] = ord("8")  # record 1, 性別
    code, out, err = _run(["codec", "decode", "--layout", "honnin-kakunin"], bytes(data), monkeypatch, capsysbinary)
    assert code == 1 and out == b""
    assert "record 1, field sex, offset 1199" in err and err.count("\n") == 1


def test_decode_truncated(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Truncated binary is refused with the bad_record_length code, exit 1."""
    data = (VECTORS / "honnin-kakunin.jukinet.bin").read_bytes()[:-3]
    code, _, err = _run(["codec", "decode", "--layout", "honnin-kakunin"], data, monkeypatch, capsysbinary)
    assert code == 1 and "[bad_record_length]" in err


def test_explain_shows_fields(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """explain prints item no., label, offset, width, raw hex and the decoded value."""
    data = (VECTORS / "soufusaki.jukinet.bin").read_bytes()[: get_codec("soufusaki").record_length]
    code, out, _ = _run(["codec", "explain", "--layout", "soufusaki"], data, monkeypatch, capsysbinary)
    text = out.decode()
    assert code == 0
    assert "代替文字氏名" in text and '"高橋　崎子"' in text and "9a d9" in text
    assert "derived items agree" in text


def test_explain_marks_the_bad_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """explain of a corrupt FILE marks the field and exits 1."""
    data = bytearray((VECTORS / "honnin-kakunin.jukinet.bin").read_bytes()[:898])
    data[297] = ord("9")  # 生年月日 month 93
    path = tmp_path / "bad.bin"
    path.write_bytes(bytes(data))
    code, out, err = _run(["codec", "explain", "--layout", "honnin-kakunin", str(path)], b"", monkeypatch, capsysbinary)
    assert code == 1 and "!!" in out.decode() and "field birth_date" in err


def test_unknown_layout_is_one_line(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """An unknown layout name gives one error line and exit 1."""
    code, _, err = _run(["codec", "decode", "--layout", "nope"], b"", monkeypatch, capsysbinary)
    assert code == 1 and "[unknown_layout]" in err and "Traceback" not in err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    """The installed command encodes and decodes through real pipes."""
    line = _jsonl([SAMPLERS["fukuhon-juminhyo"](4)])
    enc = subprocess.run([sys.executable, "-m", "juki_gateway", "codec", "encode", "--layout", "fukuhon-juminhyo",
                          "--profile", "intermediate"], input=line, capture_output=True, timeout=60, check=True)
    dec = subprocess.run([sys.executable, "-m", "juki_gateway", "codec", "decode", "--layout", "fukuhon-juminhyo",
                          "--profile", "intermediate"], input=enc.stdout, capture_output=True, timeout=60, check=True)
    assert json.loads(dec.stdout)["nationality"] == "VNM"


def test_raw_bytes_fields_are_hex_in_json(monkeypatch: pytest.MonkeyPatch,
                                          capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """An intermediate permit decodes with its key and signature as hex and encodes back to the same bytes."""
    data = (VECTORS / "intermediate" / "permit.bin").read_bytes()
    argv = ["--layout", "permit", "--profile", "intermediate"]
    code, out, _err = _run(["codec", "decode", *argv], data, monkeypatch, capsysbinary)
    assert code == 0
    rec = json.loads(out)
    assert rec["signature"] == data[-64:].hex() and rec["requester"] == "mhlw-000001"
    code, back, _err = _run(["codec", "encode", *argv], out, monkeypatch, capsysbinary)
    assert code == 0 and back == data
    code, _out, err = _run(["codec", "encode", *argv], _jsonl([{**rec, "signature": "zz"}]),
                           monkeypatch, capsysbinary)
    assert code == 1 and "field signature" in err and "not hex" in err and "Traceback" not in err


def test_explain_reads_a_bounded_input(tmp_path: Path) -> None:
    """codec explain refuses more than one largest frame of input, in one line, exit 2,
    without reading the rest (a stream that never ends does not hang it)."""
    import io

    from juki_gateway.cli import codec_cmd

    class Endless(io.RawIOBase):
        read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = len(b)
            b[:n] = b"\x00" * n
            Endless.read_bytes += n
            return n

    args = argparse.Namespace(layout="honnin-kakunin", profile="jukinet", file=None)
    with pytest.raises(UsageError, match="explain reads at most 8388608 bytes"):
        codec_cmd.cmd_explain(args, stdin=io.BufferedReader(Endless()), out=io.StringIO())
    assert Endless.read_bytes <= codec_cmd.EXPLAIN_LIMIT + 64 * 1024


def test_handshakes_table_escapes_control_characters() -> None:
    """A certificate subject holding an escape sequence or a newline is shown escaped, so the
    table cannot rewrite the operator's terminal or forge a row."""
    from juki_gateway.gateway.handshake_log import format_table

    table = format_table([{"ts": "2026-11-26T10:00:00.000Z", "validation_status": "unknown_ca",
                           "subject": "CN=evil\x1b[2J\nfake row\u202e"}])
    assert "\x1b" not in table and "\u202e" not in table and table.count("\n") == 1
    assert "CN=evil\\x1b[2J\\nfake row\\u202e" in table

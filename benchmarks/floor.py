"""The honest floor for ``make bench-codec``: hand-written struct.Struct codecs, no generic machinery.

One parse and one build function per layout (本人確認情報, 送付先情報), written out field by field
with the same decoding and validation as the library's codec (check digits, code tables, calendar
dates, padding, 外字 counts, 清音化かな, 項目長, 代替文字), using the same primitives (regexes, the
substitution function, the seion table). Errors are a bare ValueError: the floor does not
locate them. The benchmark checks that the floor gives the library's results on the samples.
"""

from __future__ import annotations

import calendar
import codecs
import struct
from typing import Any

from juki_gateway.codecs import codetables as ct
from juki_gateway.codecs.gaiji import JUKINET, TEXT_BAD
from juki_gateway.codecs.kana import KANA_BAD, SEION_TABLE

P = JUKINET
u16 = codecs.utf_16_be_decode
BAD = TEXT_BAD.search
KBAD = KANA_BAD.search
UNUSUAL = P.unusual_re.search
FINDALL = P.gaiji_re.findall
SUBST = P.substitute
isleap = calendar.isleap
MMDD = frozenset(f"{m:02d}{d:02d}".encode() for m in range(1, 13) for d in range(1, 32)
                 if d <= (29 if m == 2 else calendar.monthrange(2023, m)[1]))
SEX = {c.encode(): c for c in ct.SEX.codes}
FLAG = {c.encode(): c for c in ct.FLAG.codes}
RSTAT = {c.encode(): c for c in ct.RECORD_STATUS.codes}
REL = {c.encode(): c for c in ct.RELATIONSHIP.codes}
CR = {c.encode(): c for c in ct.CHANGE_REASON.codes}
CRD = {c.encode(): c for c in ct.CHANGE_REASON_DETAIL.codes}
PRINT = {c.encode(): c for c in ct.PRINT_CLASS.codes}
FOREIGN = {c.encode(): c for c in ct.FOREIGN_CLASS.codes}
SUBRES = {c.encode(): c for c in ct.SUBSTITUTE_RESULT.codes}
MOD11 = bytes(48 + (0 if r <= 1 else 11 - r) for r in range(11))
LGCK = bytes(48 + (11 - r) % 10 for r in range(11))
SP = b" "
L2 = [b"%02d" % n for n in range(100)]
L3 = [b"%03d" % n for n in range(1000)]
PAD = "\u3000".encode("utf-16-be")


DATES = frozenset(b"%04d%02d%02d" % (y, m, d) for y in range(1900, 2100) for m in range(1, 13)
                  for d in range(1, calendar.monthrange(y, m)[1] + 1))


def bad_date(b: bytes) -> bool:
    if b in DATES:
        return False
    return not b.isdigit() or b[4:8] not in MMDD or b[:4] == b"0000" or (b[4:8] == b"0229" and not isleap(int(b[:4])))


def strip_pad(raw: bytes) -> tuple[str, int]:
    """The value of a U+3000-padded UTF-16BE field and its byte length (padding found on bytes)."""
    n = len(raw.rstrip(b"0\x00"))
    n += n & 1
    if raw[n:] == PAD * ((len(raw) - n) // 2):
        return u16(raw[:n], None, True)[0], n
    v = u16(raw, None, True)[0].rstrip("\u3000")
    return v, len(v.encode("utf-16-be"))


def text(raw: bytes) -> tuple[str, int, int]:
    """(value, 外字 count, byte length) of a double-byte field, or ValueError."""
    v, n = strip_pad(raw)
    if not v:
        raise ValueError
    g = 0
    if UNUSUAL(v):
        if BAD(v):
            raise ValueError
        g = len(FINDALL(v))
    return v, g, n


def kana(raw: bytes) -> tuple[str, int]:
    v, n = strip_pad(raw)
    if not v or KBAD(v):
        raise ValueError
    return v, n


def alnum(raw: bytes) -> str:
    s = raw.rstrip(SP)
    if not s or not s.isalnum() or not s.isascii():
        raise ValueError
    return s.decode()


HONNIN = struct.Struct(">11s80s2s100s100s8s1s6s7s7s200s2s12s8s8s8s6s200s2s8s2s8s2s11s8s16s16s16s12s12s1s1s1s1s1s14s")
E12 = b" " * 12
E11 = b" " * 11
E6 = b" " * 6
E200 = PAD * 100


def parse_honnin(data: bytes) -> dict[str, Any]:
    (jc, kn, kng, kk, sk, bd, sx, lg, aza, pc, ad, adg, kb, rs, asn, nd, plg, pad, padg, rel, cr, cd, crd,
     ojc, jcs, rq, op, tm, sq, rsq, f1, f2, f3, gf, rsf, ts) = HONNIN.unpack(data)
    if not jc.isdigit() or MOD11[(jc[0]*5+jc[1]*4+jc[2]*3+jc[3]*2+jc[4]*7+jc[5]*6+jc[6]*5+jc[7]*4+jc[8]*3+jc[9]*2-1968) % 11] != jc[10]:
        raise ValueError
    name, name_g, _ = text(kn)
    if kng != L2[name_g]:
        raise ValueError
    kana_name, _ = kana(kk)
    seion = kana_name.translate(SEION_TABLE)
    canon(seion, sk)
    if bad_date(bd):
        raise ValueError
    sex = SEX[sx]
    if not lg.isdigit() or LGCK[(lg[0]*6+lg[1]*5+lg[2]*4+lg[3]*3+lg[4]*2-960) % 11] != lg[5]:
        raise ValueError
    if not aza.isdigit() or not pc.isdigit():
        raise ValueError
    addr, addr_g, _ = text(ad)
    if adg != L2[addr_g]:
        raise ValueError
    if kb == E12:
        kojin = None
    elif not kb.isdigit() or MOD11[(kb[0]*6+kb[1]*5+kb[2]*4+kb[3]*3+kb[4]*2+kb[5]*7+kb[6]*6+kb[7]*5+kb[8]*4+kb[9]*3+kb[10]*2-2256) % 11] != kb[11]:
        raise ValueError
    else:
        kojin = kb.decode()
    if bad_date(rs) or bad_date(asn) or bad_date(nd):
        raise ValueError
    if plg == E6:
        prev_lg = None
    elif not plg.isdigit() or LGCK[(plg[0]*6+plg[1]*5+plg[2]*4+plg[3]*3+plg[4]*2-960) % 11] != plg[5]:
        raise ValueError
    else:
        prev_lg = plg.decode()
    if pad == E200:
        prev_addr, prev_g = None, 0
    else:
        prev_addr, prev_g, _ = text(pad)
    if padg != L2[prev_g]:
        raise ValueError
    relationship = REL[rel]
    reason = CR[cr]
    if bad_date(cd):
        raise ValueError
    detail = CRD[crd]
    if ojc == E11:
        old = None
    elif not ojc.isdigit() or MOD11[(ojc[0]*5+ojc[1]*4+ojc[2]*3+ojc[3]*2+ojc[4]*7+ojc[5]*6+ojc[6]*5+ojc[7]*4+ojc[8]*3+ojc[9]*2-1968) % 11] != ojc[10]:
        raise ValueError
    else:
        old = ojc.decode()
    if bad_date(jcs) or not rq.isdigit() or not sq.isdigit() or not rsq.isdigit():
        raise ValueError
    gflag = "1" if name_g or addr_g or prev_g else "0"
    if gf != gflag.encode():
        raise ValueError
    if not ts.isdigit() or bad_date(ts[:8]) or ts[8:10] > b"23" or ts[10:12] > b"59" or ts[12:] > b"59":
        raise ValueError
    return {
        "juminhyo_code": jc.decode(), "kanji_name": name, "kanji_name_gaiji_count": name_g,
        "kana_name": kana_name, "seion_kana_name": seion, "birth_date": bd.decode(), "sex": sex,
        "lg_code": lg.decode(), "aza_code": aza.decode(), "postal_code": pc.decode(), "address": addr,
        "address_gaiji_count": addr_g, "kojin_bango": kojin, "resident_since": rs.decode(),
        "address_since": asn.decode(), "notification_date": nd.decode(), "previous_lg_code": prev_lg,
        "previous_address": prev_addr, "previous_address_gaiji_count": prev_g, "relationship": relationship,
        "change_reason": reason, "change_date": cd.decode(), "change_reason_detail": detail,
        "old_juminhyo_code": old, "juminhyo_code_since": jcs.decode(), "request_no": rq.decode(),
        "operator_id": alnum(op), "terminal_id": alnum(tm), "seq": int(sq), "recovery_seq": int(rsq),
        "update_lock_flag": FLAG[f1], "scheduled_flag": FLAG[f2], "exclusive_flag": FLAG[f3],
        "gaiji_flag": gflag, "record_status_flag": RSTAT[rsf], "timestamp": ts.decode(),
    }


def enc_text(v: Any, width: int) -> bytes:
    if type(v) is not str or not v or BAD(v) or v[-1] == "\u3000":
        raise ValueError
    b = v.encode("utf-16-be")
    if len(b) > width:
        raise ValueError
    return b + PAD * ((width - len(b)) // 2)


def enc_kana(v: Any, width: int) -> bytes:
    if type(v) is not str or not v or KBAD(v) or v[-1] == "\u3000":
        raise ValueError
    b = v.encode("utf-16-be")
    if len(b) > width:
        raise ValueError
    return b + PAD * ((width - len(b)) // 2)


def enc_digits(v: Any, n: int) -> bytes:
    if type(v) is not str or len(v) != n or not v.isascii() or not v.isdigit():
        raise ValueError
    return v.encode()


def enc_date(v: Any) -> bytes:
    b = enc_digits(v, 8)
    if bad_date(b):
        raise ValueError
    return b


def enc_code(v: Any, table: dict[bytes, str]) -> bytes:
    if type(v) is not str:
        raise ValueError
    b = v.encode()
    if b not in table:
        raise ValueError
    return b


def enc_alnum(v: Any, width: int) -> bytes:
    if type(v) is not str or not v or len(v) > width or not v.isascii() or not v.isalnum():
        raise ValueError
    return v.encode().ljust(width)


def enc_num(v: Any, width: int) -> bytes:
    if type(v) is not int or not 0 <= v < 10**width:
        raise ValueError
    return b"%0*d" % (width, v)


def enc_jc(v: Any) -> bytes:
    b = enc_digits(v, 11)
    if MOD11[(b[0]*5+b[1]*4+b[2]*3+b[3]*2+b[4]*7+b[5]*6+b[6]*5+b[7]*4+b[8]*3+b[9]*2-1968) % 11] != b[10]:
        raise ValueError
    return b


def enc_kb(v: Any) -> bytes:
    b = enc_digits(v, 12)
    if MOD11[(b[0]*6+b[1]*5+b[2]*4+b[3]*3+b[4]*2+b[5]*7+b[6]*6+b[7]*5+b[8]*4+b[9]*3+b[10]*2-2256) % 11] != b[11]:
        raise ValueError
    return b


def enc_lg(v: Any) -> bytes:
    b = enc_digits(v, 6)
    if LGCK[(b[0]*6+b[1]*5+b[2]*4+b[3]*3+b[4]*2-960) % 11] != b[5]:
        raise ValueError
    return b


def gaiji(v: str | None) -> int:
    return len(FINDALL(v)) if v else 0


def build_honnin(r: dict[str, Any]) -> bytes:
    name, addr, prev = r["kanji_name"], r["address"], r.get("previous_address")
    kana_name = r["kana_name"]
    ng, ag = gaiji(name), gaiji(addr)
    b_name, b_addr = enc_text(name, 80), enc_text(addr, 200)
    b_prev = E200 if prev is None else enc_text(prev, 200)
    pg = gaiji(prev)
    b_kana = enc_kana(kana_name, 100)
    seion = kana_name.translate(SEION_TABLE)
    kb, plg, ojc = r.get("kojin_bango"), r.get("previous_lg_code"), r.get("old_juminhyo_code")
    ts = enc_digits(r["timestamp"], 14)
    if not ts.isdigit() or bad_date(ts[:8]) or ts[8:10] > b"23" or ts[10:12] > b"59" or ts[12:] > b"59":
        raise ValueError
    return HONNIN.pack(
        enc_jc(r["juminhyo_code"]), b_name, b"%02d" % ng, b_kana, enc_kana(seion, 100),
        enc_date(r["birth_date"]), enc_code(r["sex"], SEX), enc_lg(r["lg_code"]),
        enc_digits(r["aza_code"], 7), enc_digits(r["postal_code"], 7), b_addr, b"%02d" % ag,
        E12 if kb is None else enc_kb(kb), enc_date(r["resident_since"]), enc_date(r["address_since"]),
        enc_date(r["notification_date"]), E6 if plg is None else enc_lg(plg), b_prev, b"%02d" % pg,
        enc_code(r["relationship"], REL), enc_code(r["change_reason"], CR), enc_date(r["change_date"]),
        enc_code(r["change_reason_detail"], CRD), E11 if ojc is None else enc_jc(ojc),
        enc_date(r["juminhyo_code_since"]), enc_digits(r["request_no"], 16),
        enc_alnum(r["operator_id"], 16), enc_alnum(r["terminal_id"], 16), enc_num(r["seq"], 12),
        enc_num(r["recovery_seq"], 12), enc_code(r["update_lock_flag"], FLAG),
        enc_code(r["scheduled_flag"], FLAG), enc_code(r["exclusive_flag"], FLAG),
        b"1" if ng or ag or pg else b"0", enc_code(r["record_status_flag"], RSTAT), ts,
    )


SOUFUSAKI = struct.Struct(
    ">12s7s3s200s2s3s80s2s6s3s40s7s3s200s2s3s80s2s3s200s2s15s3s80s2s7s3s200s2s15s3s8s16s16s1s11s"
    "3s80s2s3s100s7s3s200s2s8s1s12s1s8s1s3s80s3s200s30s30s1s9s"
)
E80 = PAD * 40
E15 = b" " * 15
E7 = b" " * 7
E8 = b" " * 8
E1 = b" "
E30 = b" " * 30


def group(ln: bytes, raw: bytes, gc: bytes | None) -> tuple[str, int]:
    """Value and 外字 count of a (項目長, text, 外字数) group, checking both derived items."""
    v, g, n = text(raw)
    if ln != L3[n] or (gc is not None and gc != L2[g]):
        raise ValueError
    return v, g


def canon(v: str, raw: bytes) -> None:
    """The wire bytes of a computed text must be its exact encoding."""
    e = v.encode("utf-16-be")
    if raw != e + PAD * ((len(raw) - len(e)) // 2) or len(e) > len(raw):
        raise ValueError


def opt_group(ln: bytes, raw: bytes, gc: bytes, empty: bytes) -> tuple[str | None, int]:
    if raw == empty:
        if ln != b"000" or gc != b"00":
            raise ValueError
        return None, 0
    return group(ln, raw, gc)


def phone(raw: bytes) -> str:
    s = raw.rstrip(SP)
    if not s or s.strip(b"0123456789-"):
        raise ValueError
    return s.decode()


def parse_soufusaki(data: bytes) -> dict[str, Any]:
    (no, dpc, dal, da, dag, dnl, dn, dng, lg, lnl, ln, lpc, lal, la, lag, ipnl, ipn, ipng, ipal, ipa, ipag,
     ipp, cnl, cn, cng, cpc, cal, ca, cag, cph, cnt, pd, op, tm, prt, jc, knl, kn, kng, kkl, kk, pc, al, ad,
     adg, bd, sx, kb, fc, red, sr, snl, sn, sal, sa, snp, sap, gf, gp) = SOUFUSAKI.unpack(data)
    if not no.isdigit() or not dpc.isdigit():
        raise ValueError
    dest_addr, g1 = group(dal, da, dag)
    dest_name, g2 = group(dnl, dn, dng)
    if not lg.isdigit() or LGCK[(lg[0]*6+lg[1]*5+lg[2]*4+lg[3]*3+lg[4]*2-960) % 11] != lg[5]:
        raise ValueError
    lg_name, _ = group(lnl, ln, None)
    if not lpc.isdigit():
        raise ValueError
    lg_addr, g3 = group(lal, la, lag)
    ip_name, g4 = group(ipnl, ipn, ipng)
    ip_addr, g5 = (lg_addr, g3) if ipa == la and ipal == lal and ipag == lag else group(ipal, ipa, ipag)
    ip_phone = phone(ipp)
    card_name, g6 = opt_group(cnl, cn, cng, E80)
    if cpc == E7:
        card_pc = None
    elif not cpc.isdigit():
        raise ValueError
    else:
        card_pc = cpc.decode()
    card_addr, g7 = opt_group(cal, ca, cag, E200)
    card_phone = None if cph == E15 else phone(cph)
    if not cnt.isdigit() or bad_date(pd):
        raise ValueError
    printc = PRINT[prt]
    if not jc.isdigit() or MOD11[(jc[0]*5+jc[1]*4+jc[2]*3+jc[3]*2+jc[4]*7+jc[5]*6+jc[6]*5+jc[7]*4+jc[8]*3+jc[9]*2-1968) % 11] != jc[10]:
        raise ValueError
    name, g8 = (dest_name, g2) if kn == dn and knl == dnl and kng == dng else group(knl, kn, kng)
    kana_name, kana_len = kana(kk)
    if kkl != L3[kana_len] or not pc.isdigit():
        raise ValueError
    addr, g9 = (dest_addr, g1) if ad == da and al == dal and adg == dag else group(al, ad, adg)
    if bad_date(bd):
        raise ValueError
    sex = SEX[sx]
    if not kb.isdigit() or MOD11[(kb[0]*6+kb[1]*5+kb[2]*4+kb[3]*3+kb[4]*2+kb[5]*7+kb[6]*6+kb[7]*5+kb[8]*4+kb[9]*3+kb[10]*2-2256) % 11] != kb[11]:
        raise ValueError
    foreign = None if fc == E1 else FOREIGN[fc]
    if red == E8:
        expiry = None
    elif bad_date(red):
        raise ValueError
    else:
        expiry = red.decode()
    sub_name, sub_addr = SUBST(name), SUBST(addr)
    result = ("0" if not (sub_name[1] or sub_name[2] or sub_addr[1] or sub_addr[2])
              else "2" if sub_name[2] or sub_addr[2] else "1")
    if sr != result.encode():
        raise ValueError
    s_name, s_addr = sub_name[0], sub_addr[0]
    canon(s_name, sn)
    canon(s_addr, sa)
    if snl != L3[len(s_name.encode("utf-16-be"))] or sal != L3[len(s_addr.encode("utf-16-be"))]:
        raise ValueError
    name_pos, addr_pos = sub_name[1], sub_addr[1]
    if snp != enc_positions(name_pos) or sap != enc_positions(addr_pos):
        raise ValueError
    pattern = "".join("1" if g else "0" for g in (g1, g2, g3, g4, g5, g6, g7, g8, g9))
    gflag = "1" if "1" in pattern else "0"
    if gf != gflag.encode() or gp != pattern.encode():
        raise ValueError
    return {
        "soufusaki_no": no.decode(), "dest_postal_code": dpc.decode(), "dest_address_length": int(dal),
        "dest_address": dest_addr, "dest_address_gaiji_count": g1, "dest_name_length": int(dnl),
        "dest_name": dest_name, "dest_name_gaiji_count": g2, "lg_code": lg.decode(),
        "lg_name_length": int(lnl), "lg_name": lg_name, "lg_postal_code": lpc.decode(),
        "lg_address_length": int(lal), "lg_address": lg_addr, "lg_address_gaiji_count": g3,
        "issue_place_name_length": int(ipnl), "issue_place_name": ip_name, "issue_place_name_gaiji_count": g4,
        "issue_place_address_length": int(ipal), "issue_place_address": ip_addr,
        "issue_place_address_gaiji_count": g5, "issue_place_phone": ip_phone,
        "card_dest_name_length": int(cnl), "card_dest_name": card_name, "card_dest_name_gaiji_count": g6,
        "card_dest_postal_code": card_pc, "card_dest_address_length": int(cal),
        "card_dest_address": card_addr, "card_dest_address_gaiji_count": g7, "card_dest_phone": card_phone,
        "person_count": int(cnt), "processing_date": pd.decode(), "operator_id": alnum(op),
        "terminal_id": alnum(tm), "print_class": printc, "juminhyo_code": jc.decode(),
        "kanji_name_length": int(knl), "kanji_name": name, "kanji_name_gaiji_count": g8,
        "kana_name_length": kana_len, "kana_name": kana_name, "postal_code": pc.decode(),
        "address_length": int(al), "address": addr, "address_gaiji_count": g9, "birth_date": bd.decode(),
        "sex": sex, "kojin_bango": kb.decode(), "foreign_resident_class": foreign,
        "residence_expiry_date": expiry, "substitute_result": result, "substitute_name_length": int(snl),
        "substitute_name": s_name, "substitute_address_length": int(sal), "substitute_address": s_addr,
        "substitute_name_positions": name_pos, "substitute_address_positions": addr_pos,
        "gaiji_flag": gflag, "gaiji_pattern": pattern,
    }


def enc_group(v: Any, width: int, optional: bool = False) -> tuple[bytes, bytes, bytes, int]:
    """(項目長, text, 外字数) bytes and the 外字 count of one double-byte item."""
    if v is None and optional:
        return b"000", PAD * (width // 2), b"00", 0
    b = enc_text(v, width)
    g = gaiji(v)
    return b"%03d" % len(v.encode("utf-16-be")), b, b"%02d" % g, g


def enc_phone(v: Any) -> bytes:
    if type(v) is not str or not v or len(v) > 15 or not v.isascii() or v.strip("0123456789-"):
        raise ValueError
    return v.encode().ljust(15)


def enc_positions(p: list[int]) -> bytes:
    return b"".join(b"%03d" % n for n in p).ljust(30)


def build_soufusaki(r: dict[str, Any]) -> bytes:
    dal, da, dag, g1 = enc_group(r["dest_address"], 200)
    dnl, dn, dng, g2 = enc_group(r["dest_name"], 80)
    lnl, ln, _, _ = enc_group(r["lg_name"], 40)
    lal, la, lag, g3 = enc_group(r["lg_address"], 200)
    ipnl, ipn, ipng, g4 = enc_group(r["issue_place_name"], 80)
    ipal, ipa, ipag, g5 = enc_group(r["issue_place_address"], 200)
    cnl, cn, cng, g6 = enc_group(r.get("card_dest_name"), 80, True)
    cal, ca, cag, g7 = enc_group(r.get("card_dest_address"), 200, True)
    knl, kn, kng, g8 = enc_group(r["kanji_name"], 80)
    al, ad, adg, g9 = enc_group(r["address"], 200)
    kk = enc_kana(r["kana_name"], 100)
    cpc, cph = r.get("card_dest_postal_code"), r.get("card_dest_phone")
    fc, red = r.get("foreign_resident_class"), r.get("residence_expiry_date")
    sub_name, sub_addr = SUBST(r["kanji_name"]), SUBST(r["address"])
    result = b"0" if not (g8 or g9) else b"2" if sub_name[2] or sub_addr[2] else b"1"
    snl, sn, _, _ = enc_group(sub_name[0], 80)
    sal, sa, _, _ = enc_group(sub_addr[0], 200)
    pattern = b"".join(b"1" if g else b"0" for g in (g1, g2, g3, g4, g5, g6, g7, g8, g9))
    return SOUFUSAKI.pack(
        enc_digits(r["soufusaki_no"], 12), enc_digits(r["dest_postal_code"], 7), dal, da, dag, dnl, dn, dng,
        enc_lg(r["lg_code"]), lnl, ln, enc_digits(r["lg_postal_code"], 7), lal, la, lag, ipnl, ipn, ipng,
        ipal, ipa, ipag, enc_phone(r["issue_place_phone"]), cnl, cn, cng,
        E7 if cpc is None else enc_digits(cpc, 7), cal, ca, cag, E15 if cph is None else enc_phone(cph),
        enc_num(r["person_count"], 3), enc_date(r["processing_date"]), enc_alnum(r["operator_id"], 16),
        enc_alnum(r["terminal_id"], 16), enc_code(r["print_class"], PRINT), enc_jc(r["juminhyo_code"]),
        knl, kn, kng, b"%03d" % len(r["kana_name"].encode("utf-16-be")), kk, enc_digits(r["postal_code"], 7),
        al, ad, adg, enc_date(r["birth_date"]), enc_code(r["sex"], SEX), enc_kb(r["kojin_bango"]),
        E1 if fc is None else enc_code(fc, FOREIGN), E8 if red is None else enc_date(red), result,
        snl, sn, sal, sa, enc_positions(sub_name[1]), enc_positions(sub_addr[1]),
        b"1" if b"1" in pattern else b"0", pattern,
    )

"""The generated documents match the tables and the one message catalogue they come from."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from juki_gateway import docs as generated
from juki_gateway.codecs import layouts as codec_layouts
from juki_gateway.codecs.messages import BASE_MESSAGES, record_lengths
from juki_gateway.protocols import catalogue
from juki_gateway.protocols.catalogue import CATALOGUE, LAYOUTS, LINK_MESSAGES, build_catalogue
from juki_gateway.protocols.intermediate.admin_messages import ADMIN_MESSAGES, AdminMessageType
from juki_gateway.protocols.intermediate.messages import IMS_MESSAGES
from juki_gateway.protocols.jukinet import errors as jukinet_errors
from juki_gateway.protocols.jukinet import layouts as jukinet_layouts
from juki_gateway.protocols.jukinet.messages import (
    ACCEPTS,
    BY_TYPE,
    JUKINET_MESSAGES,
    SEQUENCED_TYPES,
    JukinetMessage,
)
from juki_gateway.protocols.jukinet.messages import record_lengths as jukinet_record_lengths

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _docs_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "juki_gateway.docs", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("doc", generated.DOCUMENTS, ids=lambda d: d.path)
def test_generated_document_is_current(doc: generated.Document) -> None:
    """Each committed generated document equals what its tables render (run `make docs` when not)."""
    assert (ROOT / doc.path).read_text(encoding="utf-8") == doc.render()


def test_docs_check_passes_on_the_committed_documents() -> None:
    """`python -m juki_gateway.docs --check` exits 0 on the repository and writes nothing."""
    before = {d.path: (ROOT / d.path).stat().st_mtime_ns for d in generated.DOCUMENTS}
    done = _docs_command("--check")
    assert done.returncode == 0, done.stderr
    assert {d.path: (ROOT / d.path).stat().st_mtime_ns for d in generated.DOCUMENTS} == before


def test_docs_command_writes_every_document_and_check_names_the_stale_ones(tmp_path: Path) -> None:
    """The one command writes every generated document under --root; --check then exits 0, and
    once a document is edited or removed it exits 1 naming exactly those files."""
    written = _docs_command("--root", str(tmp_path))
    assert written.returncode == 0, written.stderr
    for doc in generated.DOCUMENTS:
        assert (tmp_path / doc.path).read_text(encoding="utf-8") == doc.render()
    assert _docs_command("--check", "--root", str(tmp_path)).returncode == 0
    edited, removed, *kept = generated.DOCUMENTS
    (tmp_path / edited.path).write_text("hand edit\n", encoding="utf-8")
    (tmp_path / removed.path).unlink()
    checked = _docs_command("--check", "--root", str(tmp_path))
    assert checked.returncode == 1
    assert edited.path in checked.stderr and removed.path in checked.stderr
    assert not any(doc.path in checked.stderr for doc in kept)


def test_docs_command_help_names_every_document() -> None:
    """`--help` describes --check and lists every generated document."""
    done = _docs_command("--help")
    assert done.returncode == 0
    assert "--check" in done.stdout
    assert all(doc.path in done.stdout for doc in generated.DOCUMENTS)


def test_jukinet_messages_are_catalogue_entries() -> None:
    """Each Juki-net type is in the one catalogue; the links' views are that very entry."""
    assert set(JUKINET_MESSAGES) == {int(t) for t in JukinetMessage}
    for msg_type in JukinetMessage:
        spec = CATALOGUE[msg_type]
        assert JUKINET_MESSAGES[msg_type] is spec is BY_TYPE[msg_type]
        assert spec.name == msg_type.name and spec.profile == "jukinet" and spec.jp and spec.direction
    assert SEQUENCED_TYPES == {JukinetMessage.UPDATE_NOTIFY, JukinetMessage.SOUFUSAKI_BATCH,
                               JukinetMessage.MOVE_IN_NOTICE, JukinetMessage.SHORI_TSUBAN_NOTIFY}


def test_jukinet_body_layouts_are_registered_codec_layouts() -> None:
    """Every Juki-net body layout is a codec layout run by get_codec and listed in wire-format.md."""
    rendered = (DOCS / "wire-format.md").read_text(encoding="utf-8")
    for name, layout in jukinet_layouts.LAYOUTS.items():
        assert LAYOUTS[name] is layout
        assert jukinet_layouts.codec_of(layout).layout is layout
        assert f"## Layout `{name}` — {layout.label}" in rendered
    for msg_type in JukinetMessage:
        assert f"| 0x{msg_type:04X} | {msg_type.name} |" in rendered


def test_link_decoder_table_is_the_catalogue_restricted_to_the_link() -> None:
    """The Juki-net frame decoder's lengths are the catalogue's, base types and Juki-net types only."""
    lengths = jukinet_record_lengths()
    everything = record_lengths(CATALOGUE)
    assert lengths == {t: everything[t] for t in lengths}
    assert set(lengths) == {1, 2, 3, 4, 5} | {int(t) for t in JukinetMessage}
    assert lengths[JukinetMessage.UPDATE_NOTIFY] == 898 and lengths[JukinetMessage.CONSISTENCY_END] == 0


def test_catalogue_error_codes_are_the_links_own() -> None:
    """Every refusal a Juki-net entry names is one of the links' error classes; each class is named."""
    named = {cls for spec in JUKINET_MESSAGES.values() for cls in spec.errors}
    assert named <= set(jukinet_errors.ERROR_CLASSES)
    # 5110 is any type an endpoint does not serve: it belongs to no one message.
    unnamed = set(jukinet_errors.ERROR_CLASSES) - named
    assert unnamed == {jukinet_errors.UnexpectedMessage}
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


def test_catalogue_is_every_table_merged_once_and_immutable() -> None:
    """The one catalogue holds each entry of the envelope, Juki-net, intermediate-server and admin
    tables (the very objects), in type order, and cannot be changed."""
    tables = (BASE_MESSAGES, JUKINET_MESSAGES, IMS_MESSAGES, ADMIN_MESSAGES)
    assert len(CATALOGUE) == sum(len(t) for t in tables)
    for table in tables:
        assert all(CATALOGUE[t] is spec for t, spec in table.items())
    assert list(CATALOGUE) == sorted(CATALOGUE)
    assert isinstance(CATALOGUE, MappingProxyType)
    with pytest.raises(TypeError):
        CATALOGUE[0x7E7E] = CATALOGUE[1]  # type: ignore[index]


def test_catalogue_refuses_a_type_number_taken_twice() -> None:
    """Building a catalogue from two tables that claim one type number fails, naming the type."""
    with pytest.raises(ValueError, match="0x0101"):
        build_catalogue(JUKINET_MESSAGES, {0x0101: IMS_MESSAGES[0x0601]})


def test_links_carry_every_type_but_the_admin_ports() -> None:
    """Every link decodes the whole catalogue except the admin port's two types, which the admin
    port (and only it) decodes too, as byte bodies."""
    assert set(CATALOGUE) - set(LINK_MESSAGES) == {int(t) for t in AdminMessageType}
    from juki_gateway.gateway.intermediate.admin import ADMIN_CATALOGUE
    from juki_gateway.protocols.channel import default_catalogue

    assert ADMIN_CATALOGUE.lengths == record_lengths(CATALOGUE)
    assert all(ADMIN_CATALOGUE.lengths[t] == 1 for t in AdminMessageType)
    assert default_catalogue().lengths == record_lengths(LINK_MESSAGES)


def test_catalogue_layouts_are_every_layout_the_codec_runs() -> None:
    """The catalogue's layout list holds every layout registered with the codec, the codec's own
    first in table order, then the links' by name."""
    import juki_gateway.gateway.intermediate.host
    import juki_gateway.simulators.runner  # noqa: F401

    assert dict(LAYOUTS) == dict(codec_layouts.LAYOUTS)
    names = list(LAYOUTS)
    own = len(codec_layouts.CODEC_LAYOUT_NAMES)
    assert tuple(names[:own]) == codec_layouts.CODEC_LAYOUT_NAMES
    assert names[own:] == sorted(names[own:])
    assert catalogue.LAYOUTS is LAYOUTS


def test_codec_imports_nothing_above_it() -> None:
    """No module of the codec imports a package above it (the protocol layer and up) or imports
    modules by name at run time: what it needs of the links is handed to it."""
    allowed = ("juki_gateway.codecs", "juki_gateway.errors")
    for path in sorted((ROOT / "juki_gateway" / "codecs").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert name != "importlib" and not name.startswith("importlib."), path.name
                if name.startswith("juki_gateway"):
                    assert name.startswith(allowed), f"{path.name} imports {name}"
        called = {n.func.id for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "__import__" not in called, path.name

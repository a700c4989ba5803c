"""Error classes of the intermediate server, each with its own code and 4-digit wire code.

The wire codes 6100–6199 are refusal reasons of an information query (sent to the requester in
the answer status), 6200–6299 hold reasons, 6300–6399 permission-list distribution errors,
6400–6499 副本 import errors, 6500–6599 flag (two-person rule) errors and 6600–6699 errors of
the intermediate link itself. They are documented in ``docs/intermediate.md``.
"""

from __future__ import annotations

from typing import ClassVar

from juki_gateway.errors import JukiError


class IntermediateError(JukiError):
    """Base class of the intermediate server's deliberate errors."""

    code: ClassVar[str] = "intermediate"
    wire_code: ClassVar[int] = 6600


class MalformedMessage(IntermediateError):
    """A body of an intermediate-server message does not follow its layout."""

    code = "ims_malformed_message"
    wire_code = 6601


class BadFrameSignature(IntermediateError):
    """A frame on an intermediate-server link has a missing or invalid signature trailer."""

    code = "ims_bad_frame_signature"
    wire_code = 6602


class UnexpectedMessage(IntermediateError):
    """A message type that this peer role may not send to the intermediate server."""

    code = "ims_unexpected_message"
    wire_code = 6603


class FrameTimeOutsideWindow(IntermediateError):
    """A frame's header timestamp is further from the server's clock than the window allows."""

    code = "ims_frame_time_outside_window"
    wire_code = 6612


# --- permission list distribution ------------------------------------------------------


class PermissionListError(IntermediateError):
    """A distributed permission list was refused."""

    code = "permission_list"
    wire_code = 6300


class PermissionListBadSignature(PermissionListError):
    """The permission list is not signed by the network's key."""

    code = "permission_list_bad_signature"
    wire_code = 6301


class PermissionListStale(PermissionListError):
    """The permission list is not newer than the version already kept."""

    code = "permission_list_stale"
    wire_code = 6302


class PermissionListMalformed(PermissionListError):
    """The permission list does not follow its layout."""

    code = "permission_list_malformed"
    wire_code = 6303


# --- 副本 import ---------------------------------------------------------------------


class FukuhonRecordError(IntermediateError):
    """One 副本 record failed its format check (R12); the others are still imported."""

    code = "fukuhon_record"
    wire_code = 6400


class FukuhonFieldInvalid(FukuhonRecordError):
    """A field of a 副本 record has a value outside its format."""

    code = "fukuhon_field_invalid"
    wire_code = 6401


class FukuhonUnknownAtena(FukuhonRecordError):
    """A 副本 record names a 団体内統合宛名番号 that has no 符号 yet."""

    code = "fukuhon_unknown_atena"
    wire_code = 6402


class ExportNotConfirmed(IntermediateError):
    """A 副本 export with flagged people has no confirmation from a second operator."""

    code = "fukuhon_export_unconfirmed"
    wire_code = 6403


# --- flags (two-person rule) -------------------------------------------------------------


class FlagError(IntermediateError):
    """A flag action was refused."""

    code = "flag"
    wire_code = 6500


class SelfConfirmation(FlagError):
    """The operator who requested a flag change tried to confirm it themselves."""

    code = "flag_self_confirmation"
    wire_code = 6501


class NothingToConfirm(FlagError):
    """The flag has no pending request to confirm."""

    code = "flag_nothing_pending"
    wire_code = 6502


class FlagRequestConflict(FlagError):
    """The flag already has a pending request, or is not in a state the request applies to."""

    code = "flag_request_conflict"
    wire_code = 6503


class FlagInvalid(FlagError):
    """A flag request names an invalid 団体内統合宛名番号, scope, reason code or review date."""

    code = "flag_invalid"
    wire_code = 6504


class UnknownFlag(FlagError):
    """No flag with this id."""

    code = "flag_unknown"
    wire_code = 6505


class NotAuthorised(IntermediateError):
    """The operator's role does not allow this action."""

    code = "not_authorised"
    wire_code = 6507


class HeldQueryError(IntermediateError):
    """A held-query action was refused (unknown id or already decided)."""

    code = "held_query"
    wire_code = 6508

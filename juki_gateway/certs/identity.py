"""Who a certificate speaks for: the role and organisation code carried in its SAN URIs.

Every certificate of the development PKI names its holder's role and organisation twice: in the
subject (``OU=<role>``, ``O=<org>``) for people reading it, and as a SAN URI
``urn:juki:role:<role>:<org>`` for the gateway, which authorizes peers by role (brief R2).
Operators carry their sub-roles as further URIs ``urn:juki:operator-role:<sub-role>``.
This module parses those URIs; it does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from juki_gateway.errors import JukiError

ROLE_URN_PREFIX = "urn:juki:role:"
OPERATOR_ROLE_URN_PREFIX = "urn:juki:operator-role:"

#: Every role a certificate may carry (brief §2, plus the operators of the admin port).
ROLES: frozenset[str] = frozenset(
    {
        "municipal-cs",
        "prefecture",
        "kiko",
        "intermediate",
        "kizon-juki",
        "bango-renkei",
        "ipnw",
        "operator",
    }
)
OPERATOR_ROLES: frozenset[str] = frozenset({"flag-operator", "reviewer", "auditor"})


class IdentityError(JukiError):
    """A certificate does not say, or says badly, which role and organisation it is for."""

    code = "bad_identity"
    wire_code = 9104


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """The role, organisation and (for operators) sub-roles a certificate names."""

    name: str
    role: str
    org: str
    operator_roles: tuple[str, ...] = ()

    def role_uris(self) -> list[str]:
        """The SAN URIs that carry this identity in a certificate."""
        uris = [f"{ROLE_URN_PREFIX}{self.role}:{self.org}"]
        uris.extend(f"{OPERATOR_ROLE_URN_PREFIX}{r}" for r in self.operator_roles)
        return uris


def validate_identity(identity: PeerIdentity) -> None:
    """Raise :class:`IdentityError` unless role, org and sub-roles are well-formed."""
    if identity.role not in ROLES:
        raise IdentityError(
            f"unknown role {identity.role!r}; expected one of {', '.join(sorted(ROLES))}"
        )
    if not identity.org or not all(c.isalnum() or c == "-" for c in identity.org):
        raise IdentityError(f"organisation code {identity.org!r} must be letters/digits")
    for sub in identity.operator_roles:
        if sub not in OPERATOR_ROLES:
            raise IdentityError(
                f"unknown operator role {sub!r}; expected one of {', '.join(sorted(OPERATOR_ROLES))}"
            )
        if identity.role != "operator":
            raise IdentityError(f"only operators carry operator roles, not {identity.role!r}")


def identity_from_certificate(cert: x509.Certificate) -> PeerIdentity:
    """Parse role, organisation and operator sub-roles from a certificate's SAN URIs."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise IdentityError("certificate has no subjectAltName with a juki role URI") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    roles = [u[len(ROLE_URN_PREFIX) :] for u in uris if u.startswith(ROLE_URN_PREFIX)]
    if len(roles) != 1:
        raise IdentityError(f"certificate must carry exactly one {ROLE_URN_PREFIX} URI, has {len(roles)}")
    role, sep, org = roles[0].rpartition(":")
    if not sep:
        raise IdentityError(f"malformed role URI {ROLE_URN_PREFIX}{roles[0]}")
    subs = tuple(
        u[len(OPERATOR_ROLE_URN_PREFIX) :] for u in uris if u.startswith(OPERATOR_ROLE_URN_PREFIX)
    )
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(cns[0].value) if cns else ""
    identity = PeerIdentity(name=name, role=role, org=org, operator_roles=subs)
    validate_identity(identity)
    return identity

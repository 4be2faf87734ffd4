"""DCE/RPC connection-oriented protocol numbers that scapy does not name as enums.

PDU types, pfc flags, auth types and auth levels come from scapy
(``scapy.layers.dcerpc``: ``DCE_RPC_TYPE``, ``RPC_C_AUTHN``, ``RPC_C_AUTHN_LEVEL``);
this module adds what scapy keeps only as display dictionaries, so that logic
never carries a bare status number.  Sources: C706 ch. 12 and appendix N,
[MS-RPCE] 2.2.2, samba ``librpc/idl/dcerpc.idl``.
"""

from __future__ import annotations

import enum
import uuid

__all__ = [
    "PType",
    "PfcFlag",
    "FaultStatus",
    "BindNakReason",
    "ContextResult",
    "ProviderReason",
    "NDR20",
    "NDR64",
    "BTFN_PREFIX",
    "BindTimeFeature",
    "SEC_VT_MAGIC",
    "COMMON_HEADER_LEN",
    "SEC_TRAILER_LEN",
]


class PType(enum.IntEnum):
    """C706 12.6.4 packet types (connection-oriented subset)."""

    REQUEST = 0
    RESPONSE = 2
    FAULT = 3
    BIND = 11
    BIND_ACK = 12
    BIND_NAK = 13
    ALTER_CONTEXT = 14
    ALTER_CONTEXT_RESP = 15
    AUTH3 = 16
    SHUTDOWN = 17
    CO_CANCEL = 18
    ORPHANED = 19


class PfcFlag(enum.IntFlag):
    """[MS-RPCE] 2.2.2.3: 0x04 means PENDING_CANCEL on requests and
    SUPPORT_HEADER_SIGN on bind/alter/auth3 PDUs."""

    FIRST_FRAG = 0x01
    LAST_FRAG = 0x02
    PENDING_CANCEL = 0x04
    SUPPORT_HEADER_SIGN = 0x04
    RESERVED_1 = 0x08
    CONC_MPX = 0x10
    DID_NOT_EXECUTE = 0x20
    MAYBE = 0x40
    OBJECT_UUID = 0x80


class FaultStatus(enum.IntEnum):
    """Status values carried in rpc_fault PDUs (C706 appendix N, [MS-RPCE] 2.2.2.8,
    Win32 codes the Windows runtime puts there)."""

    ACCESS_DENIED = 0x00000005
    RPC_X_BAD_STUB_DATA = 0x000006F7
    RPC_S_PROCNUM_OUT_OF_RANGE = 0x000006D1
    RPC_S_UNKNOWN_IF = 0x000006B5
    RPC_S_SEC_PKG_ERROR = 0x00000721
    OR_INVALID_OXID = 0x00000776
    OR_INVALID_OID = 0x00000777
    OR_INVALID_SET = 0x00000778
    NCA_S_OP_RNG_ERROR = 0x1C010002
    NCA_S_UNK_IF = 0x1C010003
    NCA_S_PROTO_ERROR = 0x1C01000B
    NCA_S_FAULT_INVALID_TAG = 0x1C000006
    NCA_S_FAULT_INVALID_BOUND = 0x1C000007
    NCA_S_FAULT_UNSPEC = 0x1C000012
    NCA_S_FAULT_CONTEXT_MISMATCH = 0x1C00001A
    NCA_S_INVALID_PRES_CONTEXT_ID = 0x1C00001C
    NCA_S_UNSUPPORTED_AUTHN_LEVEL = 0x1C00001D
    NCA_S_INVALID_CHECKSUM = 0x1C00001F
    NCA_S_INVALID_CRC = 0x1C000020


class BindNakReason(enum.IntEnum):
    """[MS-RPCE] 2.2.2.5 / C706 p_reject_reason_t."""

    NOT_SPECIFIED = 0
    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2
    PROTOCOL_VERSION_NOT_SUPPORTED = 4
    AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8
    INVALID_CHECKSUM = 9


class ContextResult(enum.IntEnum):
    """p_cont_def_result_t, plus [MS-RPCE] 2.2.2.4 negotiate_ack."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    PROVIDER_REJECTION = 2
    NEGOTIATE_ACK = 3


class BindTimeFeature(enum.IntFlag):
    """[MS-RPCE] 2.2.2.14 bind-time feature bits, acknowledged in the reason field of
    the negotiate_ack result."""

    SECURITY_CONTEXT_MULTIPLEXING = 0x1
    KEEP_CONNECTION_ON_ORPHAN = 0x2


class ProviderReason(enum.IntEnum):
    """C706 p_provider_reason_t, used in p_result_t.reason."""

    NOT_SPECIFIED = 0
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 1
    PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED = 2
    LOCAL_LIMIT_EXCEEDED = 3


#: [MS-RPCE] 2.2.4.12 NDR 2.0 transfer syntax, version 2.
NDR20 = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2)
#: [MS-RPCE] 2.2.5.1 NDR64 transfer syntax, version 1.
NDR64 = (uuid.UUID("71710533-beba-4937-8319-b5dbef9ccc36"), 1)
#: [MS-RPCE] 3.3.1.5.3 bind-time feature negotiation: the first 8 bytes of the UUID.
BTFN_PREFIX = uuid.UUID("6cb71c2c-9812-4540-0000-000000000000").bytes[:8]
#: [MS-RPCE] 2.2.2.13 verification trailer signature.
SEC_VT_MAGIC = b"\x8a\xe3\x13\x71\x02\xf4\x36\x71"

COMMON_HEADER_LEN = 16
SEC_TRAILER_LEN = 8

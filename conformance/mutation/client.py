"""Client mutants: modes of the driven client, each breaking exactly one client-side
requirement.  A mode is a set of :class:`~conformance.client.settings.ClientSettings`
fields replaced (the client's declared behaviour), never a patched method, so a
renamed setting cannot quietly turn a mutant into the conformant client."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from conformance.wire.kerberos import GssFlag
from conformance.wire.passive import NtlmFlag

__all__ = ["ClientMutant", "CLIENT_MUTANTS", "CLIENT_BASELINE"]


@dataclasses.dataclass(frozen=True, slots=True)
class ClientMutant:
    name: str
    requirement: str
    description: str
    settings: Mapping[str, object]


CLIENT_MUTANTS = {m.name: m for m in [
    ClientMutant("client-version-1.0", "WCCE-T-02", "binds ICertRequestD at version 1.0",
                 {"if_version": 1}),
    ClientMutant("client-kerberos-identify", "WCCE-T-10",
                 "SPNEGO/Kerberos with GSS_C_IDENTIFY_FLAG in the checksum at impersonation IDENTIFY",
                 {"provider": "spnego-kerberos", "impersonation": 2}),
    ClientMutant("client-kerberos-raw", "WCCE-T-06", "authenticates with raw Kerberos (auth_type 16)",
                 {"provider": "kerberos"}),
    ClientMutant("client-kerberos-no-conf", "WCCE-T-09",
                 "SPNEGO/Kerberos at PKT_PRIVACY without GSS_C_CONF_FLAG in the checksum",
                 {"provider": "spnego-kerberos", "kerberos_flags_clear": int(GssFlag.CONF)}),
    ClientMutant("client-kerberos-activation-spn", "WCCE-T-12",
                 "asks for a host/ ticket instead of RPCSS/ to activate",
                 {"provider": "spnego-kerberos", "activation_spn": "host/ca01.lab.test"}),
    ClientMutant("client-wrong-class", "WCCE-T-04", "activates another CLSID",
                 {"clsid": "6f0b7c1e-2c8b-4d0e-9a53-7c1c0b6d2a11"}),
    ClientMutant("client-foreign-iid", "WCCE-T-05", "asks for an interface that is not ICertRequestD(2)",
                 {"iids": ["0000010b-0000-0000-c000-000000000046"]}),
    ClientMutant("client-raw-ntlm", "WCCE-T-06", "authenticates with raw NTLM (auth_type 10)",
                 {"provider": "ntlm"}),
    ClientMutant("client-level-5", "WCCE-T-07", "calls at PKT_INTEGRITY", {"level": 5}),
    ClientMutant("client-no-seal-flag", "WCCE-T-09", "NTLM NEGOTIATE without SEAL at PKT_PRIVACY",
                 {"ntlm_clear_flags": int(NtlmFlag.SEAL)}),
    ClientMutant("client-identify", "WCCE-T-10", "impersonation level IDENTIFY", {"impersonation": 2}),
    ClientMutant("client-anonymous", "WCCE-T-11", "authenticates anonymously", {"anonymous": True}),
    ClientMutant("client-spnego-auth3", "WCCE-T-13", "sends SPNEGO's third leg in rpc_auth3",
                 {"spnego_auth3": True}),
    ClientMutant("client-no-object-uuid", "WCCE-T-15", "ORPCs without PFC_OBJECT_UUID",
                 {"object_uuid": False}),
    ClientMutant("client-orpcthis-flags", "WCCE-T-16", "ORPCTHIS.flags 1 on ORPCs", {"orpc_flags": 1}),
    ClientMutant("client-activation-connect", "WCCE-T-22", "activates at CONNECT", {"activation_level": 2}),
    ClientMutant("client-resolve-connect", "WCCE-T-23", "resolves the OXID at CONNECT",
                 {"resolve_oxid_level": 2}),
    ClientMutant("client-auth-pad-8", "RPCE-PAD-01", "pads stubs to 8 bytes before the sec_trailer",
                 {"auth_pad_alignment": 8}),
]}

#: The client scenario's defaults: what a conformant Windows-like client does.
CLIENT_BASELINE = {"provider": "spnego-ntlm", "level": 6, "impersonation": 3,
                   "server_alive2": True, "resolve_oxid_level": 5}

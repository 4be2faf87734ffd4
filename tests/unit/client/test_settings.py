"""ClientSettings: the client's knobs as data, with one-line errors."""

from __future__ import annotations

import pytest

from conformance.client.settings import ClientSettings, Provider, SettingsError
from conformance.wire import wcce


def test_from_mapping():
    s = ClientSettings.from_mapping(
        {"provider": "ntlm", "level": 5, "impersonation": 2, "version": "1.0",
         "iids": ["ICertRequestD"], "password_env": "PW", "header_signing": False},
        environ={"PW": "secret"}, host="127.0.0.1", user="alice", domain="lab.test")
    assert s.provider is Provider.NTLM and s.level == 5 and s.if_version == 1
    assert s.iids == (wcce.IID_ICERTREQUESTD,) and s.password == "secret"
    sec = s.security()
    assert (sec.auth_type, sec.level, sec.impersonation, sec.header_sign) == (10, 5, 2, False)
    assert s.activation_security().level == 5
    assert "secret" not in repr(s)


def test_activation_is_at_least_integrity():
    s = ClientSettings(host="h", provider=Provider.SPNEGO_NTLM, level=2, user="u")
    assert s.activation_security().level == 5
    assert ClientSettings(host="h", provider=Provider.NONE, level=1).activation_security().auth_type == 0


@pytest.mark.parametrize("data, message", [
    ({"colour": 1}, "unknown client setting"),
    ({"password": "x"}, "never a password"),
    ({"password_env": "MISSING"}, "MISSING is not set"),
    ({"provider": "smoke-signals"}, "provider"),
    ({"level": 9}, "not an RPC auth level"),
    ({"impersonation": 0}, "not 1-4"),
    ({"provider": "none"}, "level 1"),
    ({"provider": "kerberos"}, "needs a KDC and a realm"),
    ({"max_recv_frag": 1024}, "1432 to 65535"),
    ({"max_recv_frag": 70000}, "1432 to 65535"),
])
def test_errors(data, message):
    with pytest.raises(SettingsError, match=message) as info:
        ClientSettings.from_mapping(data, environ={}, host="h", user="u")
    assert "\n" not in str(info.value)



"""Configuration loading: good files, and one-line errors for bad ones."""

from __future__ import annotations

import pytest

from conformance.refca.config import ConfigError, RequestDenial, load_config
from conformance.wire.gss import nt_hash
from conformance.wire.wcce import InterfaceFlag


def test_defaults_are_windows_server_2012_and_later():
    config = load_config(None)
    assert config.policy.interface_flags & InterfaceFlag.ENFORCEENCRYPTICERTREQUEST
    assert config.policy.activation_min_level == 5
    assert config.listen.activation_port == 135 and config.listen.host == "127.0.0.1"


def test_full_file(tmp_path):
    (tmp_path / "ca.toml").write_text("""
[ca]
name = "LAB-CA"
state_dir = "st"
[listen]
host = "127.0.0.7"
activation_port = 1135
[users]
alice = "nt:8846f7eaee8fb117ad06bdd830b7586c"
bob = { password_env = "BOB_PW" }
[policy]
interface_flags = ["IF_ENFORCEENCRYPTICERTREQUEST", "NOREMOTEICERTADMIN"]
request_denial = "hresult-legacy-accessdenied"
activation_min_level = "PKT_PRIVACY"
""")
    config = load_config(tmp_path / "ca.toml", environ={"BOB_PW": "secret"})
    assert config.ca_name == "LAB-CA" and config.state_dir == tmp_path / "st"
    assert config.users == {"alice": bytes.fromhex("8846f7eaee8fb117ad06bdd830b7586c"),
                            "bob": nt_hash("secret")}
    assert config.policy.interface_flags == (InterfaceFlag.ENFORCEENCRYPTICERTREQUEST
                                             | InterfaceFlag.NOREMOTEICERTADMIN)
    assert config.policy.request_denial is RequestDenial.HRESULT_LEGACY
    assert config.policy.activation_min_level == 6


@pytest.mark.parametrize("text, message", [
    ("[nonsense]\n", "unknown configuration section"),
    ("[listen]\nport = 1\n", "unknown key(s) in [listen]: port"),
    ('[users]\nalice = "pw"\n', "clear-text passwords"),
    ('[users]\nalice = "nt:1234"\n', "32 hex digits"),
    ('[users]\nbob = { password_env = "NOPE_NOT_SET" }\n', "NOPE_NOT_SET is not set"),
    ('[listen]\nhost = "192.0.2.1"\n', "not a loopback address"),
    ('[policy]\ninterface_flags = ["IF_BOGUS"]\n', "unknown flag"),
    ('[policy]\nrequest_denial = "shrug"\n', "request_denial"),
    ('[policy]\nactivation_min_level = 9\n', "not an RPC auth level"),
])
def test_errors_name_the_key(tmp_path, text, message):
    (tmp_path / "ca.toml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")) as info:
        load_config(tmp_path / "ca.toml", environ={})
    assert "\n" not in str(info.value)

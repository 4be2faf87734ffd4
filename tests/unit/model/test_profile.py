"""Target profiles: validated at start, one clear line per problem, secrets by variable name."""

from __future__ import annotations

import datetime
import pathlib

import pytest

from conformance.model.profile import DEFAULT_DROP_WAIT, ProfileError, load_profile

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
GOOD = '''
[target]
host = "127.0.0.1"
ca_name = "LAB-CA"
[credentials]
user = "alice"
password_env = "PW"
'''


def write(tmp_path, text: str) -> pathlib.Path:
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


def test_minimal_profile_and_defaults(tmp_path):
    t = load_profile(write(tmp_path, GOOD), environ={"PW": "s3cret"})
    assert (t.host, t.activation_port, t.ca_name, t.user, t.password) == ("127.0.0.1", 135, "LAB-CA",
                                                                            "alice", "s3cret")
    assert t.claims.enforce_privacy is None  # unknown: its cases are N/A
    assert t.issue_template == "User" and not t.claims.pending_template
    assert "s3cret" not in repr(t)
    assert t.drop_wait == DEFAULT_DROP_WAIT == 0.2  # a close is looked for 0.2 s after an answer


def test_drop_wait_is_read(tmp_path):
    t = load_profile(write(tmp_path, GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\ndrop_wait = 1')),
                     environ={"PW": "x"})
    assert t.drop_wait == 1.0 and isinstance(t.drop_wait, float)


def test_claims_templates_and_quirks(tmp_path):
    t = load_profile(write(tmp_path, GOOD + '''
[templates]
issue = "Machine"
pending = "Approve"
[claims]
enforce_privacy = false
security_context_multiplexing = true
[[quirk]]
case = "rpce/appendix-n/*"
reason = "ticket 7"
expires = 2027-01-31
'''), environ={"PW": "x"})
    assert t.issue_template == "Machine" and t.claims.pending_template
    assert t.claims.enforce_privacy is False and t.claims.hardened_activation is None
    assert t.claims.holds("security_context_multiplexing") is True
    (quirk,) = t.quirks
    assert quirk.covers("rpce/appendix-n/opnum-out-of-range") and quirk.expires == datetime.date(2027, 1, 31)


@pytest.mark.parametrize("text, fragment", [
    (GOOD + "[colours]\nred = 1\n", "unknown section(s) in target profile: colours"),
    (GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nbogus = 1'), "unknown key(s) in [target]: bogus"),
    (GOOD.replace('ca_name = "LAB-CA"\n', ""), "[target] ca_name is required"),
    (GOOD.replace('password_env = "PW"', 'password_env = "NOPE"'), "NOPE (credentials.password_env) is not set"),
    (GOOD.replace('password_env = "PW"', 'password = "x"\npassword_env = "PW"'), "unknown key(s) in [credentials]"),
    (GOOD.replace('ca_name = "LAB-CA"', 'ca_name = 7'), "ca_name must be a non-empty string"),
    (GOOD + "[target.x]\n", "unknown key(s) in [target]: x"),
    (GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nactivation_port = 70000'), "not a TCP port"),
    (GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\nactivation_port = true'), "not a TCP port"),
    (GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\ndrop_wait = 0'), "target.drop_wait 0: seconds"),
    (GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\ndrop_wait = "1s"'), "target.drop_wait '1s'"),
    (GOOD.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\ndrop_wait = 11'), "0.01 to 10"),
    (GOOD + "[claims]\nenforce_privacy = \"yes\"\n", "claims.enforce_privacy must be true or false"),
    (GOOD + "[claims]\nflying = true\n", "unknown key(s) in [claims]: flying"),
    (GOOD + "[[quirk]]\ncase = \"x\"\n", "quirk #1: needs exactly case, reason and expires"),
    ("claims = 3\n" + GOOD, "[claims] must be a table"),
    ("[target\n", "not valid TOML"),
    (GOOD + "[kerberos]\nrealm = \"LAB.TEST\"\n", "[kerberos] kdc is required"),
    (GOOD + "[kerberos]\nrealm = \"R\"\nkdc = \"h:99999\"\nservice_host = \"ca\"\n", "is not host or host:port"),
    (GOOD + "[kerberos]\nrealm = \"R\"\nkdc = \"h\"\nservice_host = \"ca\"\nkeytab = \"none.keytab\"\n",
     "is not a file"),
    (GOOD + "[kerberos]\nrealm = \"R\"\nkdc = \"h\"\nservice_host = \"ca\"\nspn = \"x\"\n",
     "unknown key(s) in [kerberos]: spn"),
])
def test_bad_profiles_are_one_line_errors(tmp_path, text, fragment):
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text), environ={"PW": "x"})
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="cannot read target profile"):
        load_profile(tmp_path / "none.toml", environ={})


@pytest.mark.parametrize("name, variable", [("embedded.toml", "WCCE_LAB_PASSWORD"),
                                            ("adcs-lab.toml", "ADCS_LAB_PASSWORD")])
def test_shipped_examples_validate(name, variable):
    target = load_profile(EXAMPLES / name, environ={variable: "x"})
    assert target.claims.enforce_privacy is True and target.password == "x"


def test_shipped_deviations_example_validates():
    from conformance.model.deviations import load_deviations

    assert load_deviations(EXAMPLES / "deviations.toml")


def test_binary_file_is_one_line(tmp_path):
    path = tmp_path / "p.toml"
    path.write_bytes(b"\xff\xfe[target]")
    with pytest.raises(ProfileError, match="is not UTF-8 text"):
        load_profile(path, environ={})


def test_kerberos_section(tmp_path):
    (tmp_path / "ca.keytab").write_bytes(b"\x05\x02")
    t = load_profile(write(tmp_path, GOOD + '''
[kerberos]
realm = "LAB.EXAMPLE"
kdc = "dc01.lab.example"
service_host = "ca01.lab.example"
keytab = "ca.keytab"
'''), environ={"PW": "x"})
    assert t.kerberos.kdc == "dc01.lab.example:88" and t.kerberos.keytab == tmp_path / "ca.keytab"
    assert t.claims.kerberos is True
    assert load_profile(write(tmp_path, GOOD), environ={"PW": "x"}).claims.kerberos is None


def test_second_credentials(tmp_path):
    second = GOOD + '[second_credentials]\nuser = "bob"\ndomain = "LAB"\npassword_env = "PW2"\n'
    t = load_profile(write(tmp_path, second), environ={"PW": "a", "PW2": "b-secret"})
    assert (t.second.user, t.second.domain, t.second.password) == ("bob", "LAB", "b-secret")
    assert t.claims.second_identity is True and "b-secret" not in repr(t)
    assert load_profile(write(tmp_path, GOOD), environ={"PW": "a"}).claims.second_identity is None
    with pytest.raises(ProfileError, match="PW2 .*is not set") as info:
        load_profile(write(tmp_path, second), environ={"PW": "a"})
    assert "\n" not in str(info.value)
    with pytest.raises(ProfileError, match=r"\[second_credentials\] user is required"):
        load_profile(write(tmp_path, GOOD + '[second_credentials]\npassword_env = "PW"\n'), environ={"PW": "a"})


# -- a plain DCE/RPC endpoint (calibration against an independent implementation) ------------------

RPC_PROFILE = '''
[target]
kind = "rpc"
host = "127.0.0.1"
activation_port = 135
interface = "mgmt"
[credentials]
user = "Administrator"
domain = "SAMBA"
password_env = "WCCE_SAMBA_PASSWORD"
'''


def test_a_plain_rpc_endpoint_profile(tmp_path):
    path = tmp_path / "samba.toml"
    path.write_text(RPC_PROFILE)
    target = load_profile(path, environ={"WCCE_SAMBA_PASSWORD": "x"})
    assert (target.kind, target.interface, target.ca_name) == ("rpc", "mgmt", "")
    assert target.claims.dcom is False and target.claims.holds("dcom") is False


@pytest.mark.parametrize("change, message", [
    (('interface = "mgmt"', 'interface = "lsarpc"'), 'kind "rpc" needs interface, one of mgmt'),
    (('interface = "mgmt"', 'interface = "mgmt"\nca_name = "X"'), "no ca_name, templates or second_credentials"),
    (('kind = "rpc"', 'kind = "smb"'), "kind 'smb' is not one of ca, rpc"),
    (('kind = "rpc"', 'kind = "ca"'), "interface is for kind"),
])
def test_plain_rpc_profile_errors(tmp_path, change, message):
    path = tmp_path / "samba.toml"
    path.write_text(RPC_PROFILE.replace(*change))
    with pytest.raises(ProfileError) as info:
        load_profile(path, environ={"WCCE_SAMBA_PASSWORD": "x"})
    assert message in str(info.value)


def test_a_ca_profile_claims_dcom(tmp_path):
    path = tmp_path / "ca.toml"
    path.write_text(RPC_PROFILE.replace('kind = "rpc"', 'ca_name = "CA"').replace('interface = "mgmt"\n', ""))
    assert load_profile(path, environ={"WCCE_SAMBA_PASSWORD": "x"}).claims.dcom is True

"""Client profiles (``examples/clients/*.toml``): a client under test for probe-client,
its command with placeholders, a time limit and its known deviations."""

from __future__ import annotations

import dataclasses
import pathlib

from conformance.model.deviations import Deviation, DeviationError, parse_deviations
from conformance.model.profile import ProfileError
from conformance.model.tomlfile import read_toml

__all__ = ["ClientProfile", "load_client_profile"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientProfile:
    """A client under test: its command (with placeholders), a time limit, its deviations."""

    name: str
    command: tuple[str, ...]
    timeout: float = 120.0
    quirks: tuple[Deviation, ...] = ()
    path: pathlib.Path | None = None
    kerberos: bool = False  # start a throwaway realm beside the CA


def load_client_profile(path: pathlib.Path) -> ClientProfile:
    data = read_toml(path, "client profile", ProfileError)
    unknown = set(data) - {"client", "quirk"}
    if unknown:
        raise ProfileError(f"client profile {path}: unknown section(s) {', '.join(sorted(unknown))}")
    client = data.get("client")
    if not isinstance(client, dict):
        raise ProfileError(f"client profile {path}: [client] with name and command is required")
    extra = set(client) - {"name", "command", "timeout", "kerberos"}
    if extra:
        raise ProfileError(f"client profile {path}: unknown key(s) in [client]: {', '.join(sorted(extra))}")
    command = client.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ProfileError(f"client profile {path}: client.command must be a non-empty list of strings")
    timeout = client.get("timeout", 120)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 1 <= timeout <= 3600:
        raise ProfileError(f"client profile {path}: client.timeout must be 1-3600 seconds")
    kerberos = client.get("kerberos", False)
    if not isinstance(kerberos, bool):
        raise ProfileError(f"client profile {path}: client.kerberos must be true or false")
    try:
        quirks = tuple(parse_deviations(data.get("quirk", []), f"client profile {path}: quirk"))
    except DeviationError as exc:
        raise ProfileError(str(exc)) from None
    return ClientProfile(name=str(client.get("name", path.stem)), command=tuple(command),
                         timeout=float(timeout), quirks=quirks, path=path, kerberos=kerberos)

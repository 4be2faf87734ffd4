"""The throwaway DC's random passwords: never taken for a samba-tool option."""

from __future__ import annotations

from conformance.targets.samba import _password


def test_a_password_never_starts_like_an_option_and_has_three_classes():
    for _ in range(2000):  # token_urlsafe starts with "-" about once in 64 draws
        password = _password()
        assert password[0].isalpha()
        assert any(c.isupper() for c in password) and any(c.islower() for c in password) \
            and any(c.isdigit() for c in password)

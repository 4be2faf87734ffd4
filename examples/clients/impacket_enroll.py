"""Enroll once with impacket's DCOMConnection (the password from WCCE_PROBE_PASSWORD).

An enrollment tool built on impacket as one would write it: activation of CCertRequestD
and ICertRequestD::Request at PKT_PRIVACY.  Used by examples/clients/impacket.toml.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from tests.support.impacket_client import enroll  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--host", "--ca", "--user", "--domain", "--template"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.user)]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    reply = enroll(args.host, user=args.user, password=os.environ["WCCE_PROBE_PASSWORD"], domain=args.domain,
                   ca_name=args.ca, template=args.template, csr=csr)
    print(f"request {reply['pdwRequestId']}: disposition {reply['pdwDisposition']}")
    return 0 if reply["pdwDisposition"] == 3 else 1


if __name__ == "__main__":
    sys.exit(main())

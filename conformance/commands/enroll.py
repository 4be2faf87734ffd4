"""``wcce-conformance enroll``: one certificate enrollment with the suite's own client.

A plain client for labs and for the benchmark against ``certipy req -dcom``: a fresh
key, a PKCS#10 request, activation of CCertRequestD and ICertRequestD::Request at
the chosen level (PKT_PRIVACY over SPNEGO by default, as MS-WCCE 2.1 asks), the key
and the issued certificate written as PEM.  The password comes from an environment
variable named on the command line, never from the command line itself.
"""

from __future__ import annotations

import os
import pathlib
import sys

from conformance.model.exitcodes import Exit

__all__ = ["enroll_command", "add_arguments"]


def add_arguments(parser) -> None:
    parser.add_argument("--host", required=True, help="the CA's host (activation port 135 unless --port)")
    parser.add_argument("--port", type=int, default=135)
    parser.add_argument("--ca", required=True, dest="ca_name", help="the CA's common name")
    parser.add_argument("--template", default="User")
    parser.add_argument("--user", required=True)
    parser.add_argument("--domain", default="")
    parser.add_argument("--password-env", required=True, metavar="VAR",
                        help="the environment variable that holds the password")
    parser.add_argument("--provider", default="spnego-ntlm",
                        choices=["spnego-ntlm", "ntlm", "spnego-kerberos", "kerberos"])
    parser.add_argument("--level", type=int, default=6, choices=range(2, 7), metavar="2-6")
    parser.add_argument("--kdc", help="host:port of the KDC (Kerberos providers)")
    parser.add_argument("--realm", help="the Kerberos realm (Kerberos providers)")
    parser.add_argument("--service-host", metavar="NAME",
                        help="the CA's DNS name: Kerberos activation tickets are for RPCSS/<NAME> "
                             "(default: --host)")
    parser.add_argument("--key", default="rsa-2048", choices=["rsa-2048", "ec-p256"])
    parser.add_argument("--out", type=pathlib.Path, required=True, metavar="PREFIX",
                        help="writes PREFIX.key and PREFIX.crt")
    parser.add_argument("--client-mode", metavar="MUTANT",
                        help="behave as a client mutant of the kill matrix (wcce-conformance mutants --list): "
                             "a wrong client on purpose, to prove probe-client catches it")


def enroll_command(args, *, whole_process: bool = False) -> int:
    """``whole_process``: the command is this process (the console script, ``python -m
    conformance``), which ends with it — not a caller of ``main([...])`` that goes on."""
    if args.password_env not in os.environ:  # before the imports: a usage error is said at once
        print(f"wcce-conformance: error: environment variable {args.password_env} is not set", file=sys.stderr)
        return Exit.USAGE
    if whole_process:
        from scapy.config import conf

        # The client talks through its own sockets (and scapy's Kerberos client through its
        # own): scapy's routing tables, read from the kernel when its routing modules load
        # (~0.1 s of the start), are never consulted.  Only where nothing else in the
        # process could want them later.
        conf.route_autoload = conf.route6_autoload = False

    # imported here: building the CLI's parser must not pay for scapy
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from conformance.client import methods
    from conformance.client.session import WcceSession
    from conformance.client.settings import SettingsError
    from conformance.judge.settings import settings_for
    from conformance.model.profile import KerberosTarget, Target
    from conformance.wire import wcce
    from conformance.wire.wcce import Disposition

    mode: dict = {}
    if args.client_mode:
        from conformance.mutation.client import CLIENT_MUTANTS

        if args.client_mode not in CLIENT_MUTANTS:
            print(f"wcce-conformance: error: unknown client mode {args.client_mode!r} "
                  f"(one of {', '.join(sorted(CLIENT_MUTANTS))})", file=sys.stderr)
            return Exit.USAGE
        mode = dict(CLIENT_MUTANTS[args.client_mode].settings)
    kerberos = None
    if args.kdc and args.realm:
        kdc_host, _, kdc_port = args.kdc.rpartition(":")
        if not kdc_host or not kdc_port.isdigit():
            print(f"wcce-conformance: error: --kdc {args.kdc!r} is not host:port", file=sys.stderr)
            return Exit.USAGE
        kerberos = KerberosTarget(realm=args.realm, kdc_host=kdc_host, kdc_port=int(kdc_port),
                                  service_host=args.service_host or args.host)
    target = Target(host=args.host, activation_port=args.port, ca_name=args.ca_name, user=args.user,
                    domain=args.domain, password=os.environ[args.password_env], kerberos=kerberos)
    try:
        settings = settings_for(target, {"provider": args.provider, "level": args.level, **mode})
    except SettingsError as exc:
        print(f"wcce-conformance: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    key = methods.new_key(args.key)
    csr = methods.new_pkcs10(args.user, key=key)
    try:
        with WcceSession.from_settings(settings) as session:
            outcome, activation = session.activate()
            if activation is None or activation.status != 0:
                status = f"0x{activation.status:08x}" if activation else f"ptype {outcome.ptype}"
                print(f"wcce-conformance: activation refused ({status})", file=sys.stderr)
                return Exit.MUST
            session.connect_exporter()
            result = session.call(methods.request(args.ca_name, csr, template=args.template))
    except OSError as exc:
        print(f"wcce-conformance: error: {args.host}:{args.port}: {exc}", file=sys.stderr)
        return Exit.CONNECTION
    reply = result.response
    if reply is None:
        print(f"wcce-conformance: request refused: fault 0x{result.fault_status or 0:08x}", file=sys.stderr)
        return Exit.MUST
    disposition, request_id = int(reply.pdwDisposition), int(reply.pdwRequestId)
    if int(reply.status) != 0 or disposition != Disposition.ISSUED:
        print(f"request {request_id}: not issued (status 0x{int(reply.status):08x}, "
              f"disposition 0x{disposition:08x})", file=sys.stderr)
        return Exit.MUST
    certificate = x509.load_der_x509_certificate(wcce.blob_bytes(reply.pctbEncodedCert))
    key_path, cert_path = args.out.with_suffix(".key"), args.out.with_suffix(".crt")
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    print(f"request {request_id}: issued, serial {certificate.serial_number:x}; wrote {key_path} and {cert_path}")
    return Exit.OK

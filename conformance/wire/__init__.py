"""Sans-IO wire layer: PDU framing, protection, and protocol definitions.

Nothing under ``conformance.wire`` opens sockets, starts threads or sleeps; the
import boundary is enforced by ``tests/unit/wire/test_sans_io.py``.  Importing
this package registers the MS-WCCE interfaces with scapy exactly once, and has scapy
remember the Kerberos keys it derives and its OIDs' names (:mod:`conformance.wire.scapymemo`).
"""

from conformance.wire import scapymemo, wcce  # noqa: F401  (wcce registers ICertRequestD/D2 with scapy)

scapymemo.install()

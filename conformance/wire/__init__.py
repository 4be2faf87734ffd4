"""Sans-IO wire layer: PDU framing, protection, and protocol definitions.

Nothing under ``conformance.wire`` opens sockets, starts threads or sleeps; the
import boundary is enforced by ``tests/unit/wire/test_sans_io.py``.  Importing
this package registers the MS-WCCE interfaces with scapy exactly once.
"""

from conformance.wire import wcce  # noqa: F401  (registers ICertRequestD/D2 with scapy)

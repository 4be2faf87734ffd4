"""wcce-conformance: a conformance test suite for the MS-WCCE DCOM transport."""

__version__ = "0.1.0"

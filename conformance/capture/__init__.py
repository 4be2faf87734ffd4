"""Bytes off the wire into Chunks and Connections (see conformance.wire.transcript)."""

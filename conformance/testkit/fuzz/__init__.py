"""Fuzz inputs for the reference CA and the judge of its answers, sans-IO.

Four kinds of input, each a frozen value that says what to send and is readable
in a report (``label``):

* ``raw``: bytes on a fresh connection, random or behind a plausible header;
* ``pdu``: a valid exchange (bind, alter_context, request, the SPNEGO/NTLM legs,
  a sealed request) whose *target* PDU gets one field mutated, by name;
* ``fragments``: a request cut into fragments, then the sequence broken
  (flags, order, a missing first or last, another call id, alloc_hint lies);
* ``ndr``: the stub of a WCCE or DCOM method, valid, then mutated; it travels in
  a correctly sealed call so that it reaches the CA's NDR decoder.

Generators draw from a :class:`Chooser`, so one generator serves hypothesis
(:func:`strategy`, which shrinks) and a plain seeded loop (:func:`generate` with
``random.Random(seed)``, the long run of ``bench/bench_fuzz.py``).  Field
mutations are descriptions applied to bytes later (:meth:`Mutation.apply`),
because a sealed PDU only exists once the I/O edge has a security context.
The I/O edge is :mod:`conformance.testkit.fuzzrun`; the judge of answers is :mod:`.judge`.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.testkit.fuzz.choose import Chooser, DrawChooser, Kind, Port, RandomChooser, weighted
from conformance.testkit.fuzz.fragments import Fragment, FragmentInput, fragment_input
from conformance.testkit.fuzz.judge import ACCEPTABLE, Answer, AnswerClass, acceptable, classify
from conformance.testkit.fuzz.ndr import CA_NAME, NDR_TARGETS, NdrInput, NdrTarget, ndr_input, valid_stub
from conformance.testkit.fuzz.pdu import (
    EXCHANGE_WEIGHTS, Exchange, Mutation, PduInput, RawInput, pdu_input, plain_exchange, raw_input,
    simple_ping_stub,
)

__all__ = [
    "Kind", "Port", "Chooser", "RandomChooser", "Exchange", "EXCHANGE_WEIGHTS", "Mutation", "Fragment",
    "RawInput", "PduInput", "FragmentInput", "NdrInput", "FuzzInput", "NdrTarget", "NDR_TARGETS", "CA_NAME",
    "AnswerClass", "Answer", "ACCEPTABLE", "classify", "acceptable", "generate", "strategy",
    "plain_exchange", "simple_ping_stub", "valid_stub", "DEFAULT_WEIGHTS",
]

FuzzInput = RawInput | PduInput | FragmentInput | NdrInput
_GENERATORS = {Kind.RAW: raw_input, Kind.PDU: pdu_input, Kind.FRAGMENTS: fragment_input,
               Kind.NDR: ndr_input}
#: The long run's mix: the cheap kinds dominate (an NDR input costs a scapy dissection
#: and a sealed reply on the CA, an authenticated exchange a whole NTLM handshake).
DEFAULT_WEIGHTS = ((Kind.RAW, 30), (Kind.PDU, 35), (Kind.FRAGMENTS, 15), (Kind.NDR, 20))


def generate(choose: Chooser, kind: Kind | None = None,
             weights: Sequence[tuple[Kind, int]] = DEFAULT_WEIGHTS, **options) -> FuzzInput:
    """One input of ``kind`` (or of a kind drawn by ``weights``); ``options`` go to the
    kind's generator (``exchanges=`` for PDUs)."""
    return _GENERATORS[kind or weighted(choose, weights)](choose, **options)


def strategy(kind: Kind | None = None, **options):
    """A hypothesis strategy for inputs of ``kind`` (hypothesis is a test dependency)."""
    from hypothesis import strategies as st

    return st.composite(lambda draw: generate(DrawChooser(draw), kind, **options))()

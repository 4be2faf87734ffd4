"""The judge's two ways of not judging, kept apart from a target's failure:

* :class:`Inconclusive` — the target (or the environment) did not let the case be
  judged: it could not be reached, or did not do what its profile claims and the case
  needs.  The case is INCONCLUSIVE, with this reason.
* any exception from a flow that is neither this nor a
  :class:`conformance.client.errors.TargetFault` is a defect of the suite: the case is ERROR.

A target that answers wrongly is neither: that is an observed outcome, judged FAIL; what
the client could not even parse arrives as a ``TargetFault`` and is judged the same way
(``conformance.judge.engine.Engine.run`` is where each becomes a verdict).
"""

from __future__ import annotations

__all__ = ["Inconclusive", "Unreachable"]


class Inconclusive(Exception):
    """The target did not do what the case needs (and its profile claims): the case
    cannot be judged and is INCONCLUSIVE, with this reason."""


class Unreachable(Inconclusive):
    """The target could not be reached (refused, reset, timed out) mid-case."""

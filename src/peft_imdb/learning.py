"""Whether a run learned: the rule, stated once, that flags a finished run `learned: false` in its record.

A run that did not learn is still stored as `ok` (its numbers are what happened), but its line says so, and the
summary lists it apart and marks every mean that includes it. A loss that stops being finite is no run at all:
training stops there and the run is stored as `failed` (callbacks.StopWhenDiverged).

The loss part of the rule is "above ln 2 + margin", not "not below ln 2 - margin": prompt tuning's committed runs
reach 0.66 test accuracy while their training loss (with dropout, at its picked learning rate) stays near 0.72.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CHANCE = 0.5  # balanced subsets: guessing one label for every review scores half
CHANCE_ALPHA = 0.05  # the accuracy is within chance's 95% interval when a binomial test against CHANCE keeps it
LOSS_MARGIN = 0.1  # a last logged training loss above ln 2 + this is worse than answering 50/50 for every review
RULE = (f"a run did not learn when its training loss is not finite, when its last logged training loss is above "
        f"ln 2 + {LOSS_MARGIN:g} = {math.log(2) + LOSS_MARGIN:.3f} (worse than answering 50/50 for every review), or "
        f"when the accuracy it is judged on (test reviews, else validation) is within chance's "
        f"{1 - CHANCE_ALPHA:.0%} interval (an exact binomial test against {CHANCE:g} gives p >= {CHANCE_ALPHA:g})")


@dataclass(frozen=True)
class Learning:
    """The rule's verdict on one run: whether it learned and, when not, why."""

    learned: bool
    reason: str = ""


def judge(losses: Sequence[float], accuracy: float | None, reviews: int, judged_on: str = "test") -> Learning:
    """Apply RULE to a run's logged training losses (oldest first; its mean loss when none was logged) and the
    accuracy it reached on `reviews` reviews of `judged_on` (test or validation); every reason that holds is given."""
    from scipy.stats import binomtest

    reasons = []
    bad = [loss for loss in losses if not math.isfinite(loss)]
    if bad:
        reasons.append(f"training loss {bad[0]} is not finite")
    elif losses and losses[-1] > math.log(2) + LOSS_MARGIN:
        reasons.append(f"last training loss {losses[-1]:.4g} is above ln 2 + {LOSS_MARGIN:g}")
    if accuracy is not None and reviews > 0:
        p_value = binomtest(round(accuracy * reviews), reviews, CHANCE).pvalue
        if p_value >= CHANCE_ALPHA:
            reasons.append(f"accuracy {accuracy:.4f} on {reviews} {judged_on} reviews is within chance's "
                           f"{1 - CHANCE_ALPHA:.0%} interval (binomial test against {CHANCE:g}: p = {p_value:.2f})")
    return Learning(not reasons, "; ".join(reasons))

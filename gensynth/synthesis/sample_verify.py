"""``sample_verify``: draw programs from a trained model and return the first that fits the examples.

Each sample is one candidate (duplicates included: a repeated sample is evaluated
again), drawn in batches of at most ``SAMPLE_BATCH`` with the meter consulted between
batches, so ``--budget-candidates`` and ``--budget-seconds`` bound it like any method.
"""

from __future__ import annotations

import numpy as np

from gensynth.synthesis.budget import Meter
from gensynth.synthesis.methods import Attempt, Problem, SolveContext, consistent, register

SAMPLE_BATCH = 32  # samples per decoding call


def sample_and_verify(model, problem: Problem, meter: Meter, samples: int) -> tuple[tuple | None, list[tuple], list[float]]:
    """Draw up to ``samples`` programs until one fits; (that sample or None, well-formed samples drawn, their log-probs).

    The batch that holds the first fit is charged up to and including it.
    """
    drawn: list[tuple] = []
    scores: list[float] = []
    done = 0
    if hasattr(model, "reseed"):
        model.reseed(problem.task_id)
    while done < samples:
        n = meter.grant(min(SAMPLE_BATCH, samples - done))
        trees, logprob = model.sample(problem.outputs, problem.shown, n)
        ok = [i for i, t in enumerate(trees) if t is not None]
        fits = np.zeros(len(trees), bool)
        fits[ok] = consistent([trees[i] for i in ok], problem)
        last = int(np.argmax(fits)) + 1 if fits.any() else len(trees)
        drawn += [trees[i] for i in ok if i < last]
        scores += [float(logprob[i]) for i in ok if i < last]
        if fits.any():
            meter.settle(n, last)
            return trees[last - 1], drawn, scores
        done += n
    return None, drawn, scores


@register
class SampleVerify:
    """K samples from a trained run's model (temperature sampling); the first consistent one."""

    name = "sample_verify"
    needs_model = True

    def __init__(self, context: SolveContext) -> None:
        self.model = context.model
        self.samples = context.config.samples

    @staticmethod
    def max_candidates(config) -> int:
        """It never evaluates more than --samples candidates (runs.config.budget)."""
        return config.samples

    def solve(self, problem: Problem, meter: Meter) -> Attempt:
        found, _, _ = sample_and_verify(self.model, problem, meter, self.samples)
        return Attempt(found, "solved" if found is not None else "no consistent sample", how="sampled")

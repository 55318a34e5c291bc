"""Verdicts with detection limits (issue 35): is a quantity the same in two runs, and if it is,
how large a difference do the data rule out?

A run's quantity is a ``measurement``: its value and block error at CHOSEN_BLOCKS blocks, the
value and error at every other block count of BLOCK_COUNTS that fits (the convergence table:
the error grows with the block length while the blocks are shorter than the correlation time,
then levels off), and the quantity's correlation time (the integrated correlation time of a
series that carries its fluctuations). Two runs' measurements give a ``verdict`` at SIGMAS
combined standard errors (``compare``) when the blocks of both are at least
MIN_BLOCK_OVER_CORRELATION times the longer of their correlation times (a short run
underestimates its own) and at least MIN_BLOCK_RATIO times each other's. The error a verdict
uses is, unless a quantity says otherwise, the larger of those at CHOSEN_BLOCKS blocks and at 3,
the longest blocks that still leave 2 degrees of freedom: an error that still grows between
them has not converged (in liquid-64, c_L, c_T and the first peak of g_OO fluctuate over tens
of ps, beyond what the per-frame correlation times see). ``independent_runs`` combines seeds.

Why here and not in ``omm_symbreak.observables``: the observables give every quantity with its
block error for any number of blocks, and the correlation times
(``observables.integrated_correlation_time``); what this module adds is the study's reporting
convention (the chosen blocks, when they are long enough, the 2 sigma rule, the detection limit,
the JSON layout), which only the analysis scripts use.
"""

from typing import Callable, Optional, Sequence

import numpy as np

CHOSEN_BLOCKS = 4
BLOCK_COUNTS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
# For an exponentially decaying correlation, 4 blocks of 2 correlation times understate the
# standard error by 27 % on average (adjacent block means correlate, and each block's variance is
# short of its long-block limit), of 3 by 19 %, of 5 by 11 %, of 10 by 5 %.
MIN_BLOCK_OVER_CORRELATION = 2.0
# The liquid's block errors of c_L, c_T and the first peak of g_OO keep growing up to blocks of
# 7.5 ps, beyond their per-frame correlation times: a run whose blocks are much shorter than the
# other's has not sampled those fluctuations (and a short liquid run is mostly its start: the
# first 2 ps are dropped only from runs longer than 4 ps).
MIN_BLOCK_RATIO = 0.5
SIGMAS = 2.0


def verdict(a: float, a_error: float, b: float, b_error: float) -> dict:
    """Whether two independent measurements a +- a_error and b +- b_error (standard errors,
    same units) differ.

    The difference a - b has the error sigma = sqrt(a_error^2 + b_error^2); it is "different"
    when |a - b| > SIGMAS sigma, else "same", and then the detection limit |a - b| + SIGMAS sigma
    is the smallest difference of the true values that the data rule out (a true difference
    that large would put the measured one more than SIGMAS sigma from it); None for "different".
    Returns {"difference", "sigma", "z": |a - b| / sigma, "verdict", "detection_limit"}, in the
    units of a and b (z dimensionless). ValueError unless sigma > 0.
    """
    difference, sigma = a - b, float(np.hypot(a_error, b_error))
    if not sigma > 0:
        raise ValueError(f"a verdict needs a positive combined error, got {a_error} and "
                         f"{b_error}")
    different = abs(difference) > SIGMAS * sigma
    return {"difference": difference, "sigma": sigma, "z": abs(difference) / sigma,
            "verdict": "different" if different else "same",
            "detection_limit": None if different else abs(difference) + SIGMAS * sigma}


def measurement(estimate: Callable[[int], tuple], correlation_time_ps: Callable[[], float],
                n_frames: int, frame_ps: float, min_block_frames: int = 1,
                chosen_blocks: int = CHOSEN_BLOCKS,
                block_counts: Sequence[int] = BLOCK_COUNTS,
                longer_blocks: Sequence[int] = (3,)) -> dict:
    """A quantity of one run, with the block error's convergence and the correlation time its
    blocks must exceed.

    estimate(n_blocks) -> (value, error): the quantity over the run's n_frames analysed frames
    (frame_ps apart, (n_frames - 1) frame_ps long; a block of n frames counts n frame_ps) from
    n_blocks blocks, and its standard error; correlation_time_ps() -> the
    quantity's correlation time in ps (``observables.integrated_correlation_time`` of a series
    that carries its fluctuations). A block needs min_block_frames frames (a lag time's, say).
    The verdict error is the largest of the errors at chosen_blocks and at ``longer_blocks``
    (fewer blocks, if they fit): () where an error grows towards few blocks by construction
    (``observables.anisotropy_between_blocks``: fewer pairs of blocks).
    Returns {"analysed_ps", "frames", "blocks": chosen_blocks, "block_ps", "value", "error",
    "verdict_error",
    "correlation_time_ps", "block_over_correlation_time", "convergence": {"blocks", "block_ps",
    "value", "error"} over the block counts that fit}; or {"analysed_ps", "frames",
    "not_measured": why} when chosen_blocks blocks of min_block_frames frames do not fit (times
    in ps, values and errors in the quantity's units).
    """
    record = {"analysed_ps": (n_frames - 1) * frame_ps, "frames": n_frames}
    if n_frames // chosen_blocks < min_block_frames:
        return {**record, "not_measured": (
            f"{n_frames} frames ({record['analysed_ps']:.4g} ps) do not make {chosen_blocks} "
            f"blocks of {min_block_frames} frames ({min_block_frames * frame_ps:.4g} ps)")}
    counts = sorted({count for count in (*block_counts, *longer_blocks, chosen_blocks)
                     if n_frames // count >= min_block_frames})
    rows = {count: tuple(float(x) for x in estimate(count)) for count in counts}
    block_ps = n_frames // chosen_blocks * frame_ps
    correlation_ps = float(correlation_time_ps())
    return {**record, "blocks": chosen_blocks, "block_ps": block_ps,
            "value": rows[chosen_blocks][0], "error": rows[chosen_blocks][1],
            "verdict_error": max(rows[count][1] for count in (*longer_blocks, chosen_blocks)
                                 if count in rows),
            "correlation_time_ps": correlation_ps,
            "block_over_correlation_time": block_ps / correlation_ps,
            "convergence": {"blocks": counts,
                            "block_ps": [n_frames // count * frame_ps for count in counts],
                            "value": [rows[count][0] for count in counts],
                            "error": [rows[count][1] for count in counts]}}


def compare(first: dict, second: dict) -> dict:
    """The ``verdict`` of two runs' ``measurement``s (their values and verdict errors), or
    {"verdict": "not measured", "why"} when one has no value, or the verdict's numbers with
    "verdict": "undecided" and "why" when a run's blocks are shorter than
    MIN_BLOCK_OVER_CORRELATION times the longer of the two correlation times, or than
    MIN_BLOCK_RATIO times the other run's blocks."""
    short = [m for m in (first, second) if "not_measured" in m]
    if short:
        return {"verdict": "not measured", "why": "; ".join(m["not_measured"] for m in short)}
    result = verdict(first["value"], first["verdict_error"], second["value"],
                     second["verdict_error"])
    correlation_ps = max(first["correlation_time_ps"], second["correlation_time_ps"])
    longest_block_ps = max(first["block_ps"], second["block_ps"])
    why = [f"blocks of {m['block_ps']:.4g} ps are shorter than {MIN_BLOCK_OVER_CORRELATION:g} "
           f"correlation times ({correlation_ps:.2g} ps)" for m in (first, second)
           if m["block_ps"] < MIN_BLOCK_OVER_CORRELATION * correlation_ps]
    why += [f"blocks of {m['block_ps']:.4g} ps are shorter than {MIN_BLOCK_RATIO:g} times the "
            f"other run's ({longest_block_ps:.4g} ps)" for m in (first, second)
            if m["block_ps"] < MIN_BLOCK_RATIO * longest_block_ps]
    if why:
        return {**result, "verdict": "undecided", "detection_limit": None, "why": "; ".join(why)}
    return result


def quantity(what: str, correlation_series: str, measurements: dict,
             pairs: Sequence[tuple]) -> dict:
    """A quantity's JSON entry: ``what`` it is (with units), the series its correlation time
    comes from, each run's ``measurement`` by name and the ``compare`` verdicts of ``pairs`` of
    run names, keyed "A vs B"."""
    return {"what": what, "correlation_series": correlation_series, "runs": measurements,
            "comparisons": {f"{a} vs {b}": compare(measurements[a], measurements[b])
                            for a, b in pairs}}


def independent_runs(values: Sequence[float], errors: Sequence[float]) -> dict:
    """Mean of the values of independent runs (seeds) of one model, with two standard errors:
    from their spread (std / sqrt(n), None for one run) and from their own (block) errors
    (sqrt(sum of squares) / n); "error" is the larger, the one a verdict uses.
    Returns {"value", "runs", "error_from_spread", "error_from_blocks", "error"}, in the
    units of ``values``."""
    values, errors = np.asarray(values, dtype=float), np.asarray(errors, dtype=float)
    from_spread: Optional[float] = (float(np.std(values, ddof=1) / np.sqrt(len(values)))
                                    if len(values) > 1 else None)
    from_blocks = float(np.sqrt(np.sum(errors ** 2)) / len(values))
    return {"value": float(np.mean(values)), "runs": len(values),
            "error_from_spread": from_spread, "error_from_blocks": from_blocks,
            "error": max(from_blocks, from_spread or 0.0)}

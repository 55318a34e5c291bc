"""analysis/verdicts.py (issue 35): the same/different verdict at 2 sigma with its detection
limit on hand-computed cases, the block error's convergence and the correlation time on an AR(1)
series whose standard error of the mean is known, and seeds combined by hand."""

import numpy as np
import pytest

from conftest import analysis_script
from omm_symbreak.observables import block_average, integrated_correlation_time
from test_observables import ar1_series


@pytest.fixture(scope="module")
def verdicts():
    return analysis_script("verdicts")


def test_verdicts_by_hand(verdicts):
    # 1.0 +- 0.3 against 0.2 +- 0.4: difference 0.8, sigma 0.5, 1.6 sigma: the same, and a true
    # difference above 0.8 + 2 x 0.5 = 1.8 is ruled out
    same = verdicts.verdict(1.0, 0.3, 0.2, 0.4)
    assert same["verdict"] == "same"
    assert (same["difference"], same["sigma"], same["z"]) == pytest.approx((0.8, 0.5, 1.6))
    assert same["detection_limit"] == pytest.approx(1.8)
    # against -0.2 +- 0.4: 1.2 > 2 x 0.5
    different = verdicts.verdict(1.0, 0.3, -0.2, 0.4)
    assert different["verdict"] == "different" and different["detection_limit"] is None
    assert different["z"] == pytest.approx(2.4)
    # the sign does not matter; exactly 2 sigma is still the same
    assert verdicts.verdict(0.0, 0.3, 1.0, 0.4)["verdict"] == "same"
    assert verdicts.verdict(0.0, 0.3, 1.0, 0.4)["detection_limit"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        verdicts.verdict(1.0, 0.0, 2.0, 0.0)


def test_block_error_converges_to_the_standard_error_of_an_ar1_mean(verdicts):
    """x_t = 0.9 x_(t-1) + e_t, 200000 samples 1 ps apart: tau = 9.5 ps, and the standard error
    of the mean sqrt(g / (T (1 - phi^2))), g = 2 tau = 19. Blocks of 2000 samples (200 tau) give
    it; blocks of 20 (2 tau) understate it, and blocks of 2, whose means have the variance
    (1 + phi) / (2 (1 - phi^2)), by sqrt(g / (1 + phi)) = sqrt(10)."""
    phi, n_samples = 0.9, 200000
    x = ar1_series(np.random.default_rng(21), phi, n_samples)[:, 0]
    expected = np.sqrt((1 + phi) / (1 - phi) / (n_samples * (1 - phi ** 2)))
    result = verdicts.measurement(lambda n: block_average(x, n),
                                  lambda: integrated_correlation_time(x, 1.0), n_samples, 1.0,
                                  chosen_blocks=100, block_counts=(100, 10000, 100000))
    assert result["correlation_time_ps"] == pytest.approx(9.5, rel=0.12)
    assert result["block_ps"] == 2000
    assert result["block_over_correlation_time"] == pytest.approx(2000 / 9.5, rel=0.12)
    assert result["error"] == pytest.approx(expected, rel=0.25)
    # 3 blocks are always in the table: the verdict's error is the larger of theirs and 100's
    assert result["convergence"]["blocks"] == [3, 100, 10000, 100000]
    assert result["convergence"]["block_ps"] == [66666, 2000, 20, 2]
    errors = result["convergence"]["error"]
    assert result["verdict_error"] == max(errors[0], result["error"])
    assert errors[1] == result["error"] and errors[3] < errors[2] < 0.85 * errors[1]
    assert errors[3] == pytest.approx(expected / np.sqrt(10), rel=0.05)
    alone = verdicts.measurement(lambda n: block_average(x, n), lambda: 9.5, n_samples, 1.0,
                                 chosen_blocks=100, block_counts=(), longer_blocks=())
    assert alone["convergence"]["blocks"] == [100]
    assert alone["verdict_error"] == alone["error"] == result["error"]


def test_short_runs_and_short_blocks_give_no_verdict(verdicts):
    x = ar1_series(np.random.default_rng(22), 0.9, 400)[:, 0]
    estimate, correlation_time = (lambda n: block_average(x, n)), (lambda: 6.5)
    short = verdicts.measurement(estimate, correlation_time, 400, 0.02, min_block_frames=101)
    assert short == {"analysed_ps": pytest.approx(7.98), "frames": 400, "not_measured":
                     "400 frames (7.98 ps) do not make 4 blocks of 101 frames (2.02 ps)"}
    # blocks of 100 samples are 15 correlation times; of 2, 0.3
    long = verdicts.measurement(estimate, correlation_time, 400, 1.0)
    assert long["convergence"]["blocks"][-1] == 64
    assert long["block_over_correlation_time"] == pytest.approx(100 / 6.5)
    brief = verdicts.measurement(estimate, lambda: 0.5, 400, 1.0, chosen_blocks=200,
                                 block_counts=(200,))
    assert verdicts.compare(long, short) == {"verdict": "not measured",
                                             "why": short["not_measured"]}
    # the longer correlation time (6.5 ps, not the short run's own 0.5) decides, and blocks
    # of 2 ps are not half as long as 100 ps
    undecided = verdicts.compare(long, brief)
    assert undecided["verdict"] == "undecided" and undecided["detection_limit"] is None
    assert undecided["why"] == ("blocks of 2 ps are shorter than 2 correlation times (6.5 ps); "
                                "blocks of 2 ps are shorter than 0.5 times the other run's "
                                "(100 ps)")
    # blocks of 40 ps are 6 correlation times but not half of 100 ps
    shorter = verdicts.measurement(lambda n: block_average(x[:160], n), correlation_time, 160,
                                   1.0)
    assert verdicts.compare(shorter, long)["why"] == ("blocks of 40 ps are shorter than 0.5 "
                                                      "times the other run's (100 ps)")
    same = verdicts.compare(long, long)
    assert same["verdict"] == "same"
    assert same["sigma"] == pytest.approx(np.sqrt(2) * long["verdict_error"])
    entry = verdicts.quantity("x", "x itself", {"a": long, "b": short}, [("a", "b")])
    assert entry["comparisons"]["a vs b"]["verdict"] == "not measured"


def test_independent_runs_by_hand(verdicts):
    # values 1 and 3: mean 2, std sqrt(2), spread error 1; block errors 0.5 each: sqrt(0.5) / 2
    combined = verdicts.independent_runs([1.0, 3.0], [0.5, 0.5])
    assert combined["value"] == 2.0 and combined["runs"] == 2
    assert combined["error_from_spread"] == pytest.approx(1.0)
    assert combined["error_from_blocks"] == pytest.approx(np.sqrt(0.5) / 2)
    assert combined["error"] == pytest.approx(1.0)
    single = verdicts.independent_runs([0.7], [0.2])
    assert single["error_from_spread"] is None and single["error"] == pytest.approx(0.2)

"""Statistical tools: block averages with standard errors, the correlation of a time series,
lagged products, and the statistics of the symmetry diagnostics of a run.

Statistical errors are standard errors over non-overlapping blocks of frames
(``block_average``). The diagnostics come as the columns of a ``diagnostics.csv``
(``omm_symbreak.rundir.read_diagnostics``; amu nm^2/ps, kJ/mol, ps).
"""

import numpy as np
import scipy.fft

__all__ = ["block_average", "statistical_inefficiency", "integrated_correlation_time",
           "angular_momentum_statistics", "torque_statistics"]

_CHUNK_VALUES = 2 ** 22  # frames x pairs (or samples x grid points) held in memory at once


def block_average(values: np.ndarray, n_blocks: int):
    """Mean and standard error of ``values`` [T, ...] over non-overlapping blocks along axis 0.

    The blocks are n_blocks consecutive runs of T // n_blocks rows (the last T % n_blocks rows
    are left out); the mean is the mean of the block means, the error the standard deviation of
    the block means over sqrt(n_blocks). The error holds when a block is much longer than the
    correlation time. Passing per-block results with n_blocks = T gives their mean and error.
    Returns (mean [...], error [...]) in the units of ``values``.
    """
    values = np.asarray(values, dtype=float)
    means = np.stack([values[block].mean(axis=0)
                      for block in _block_slices(len(values), n_blocks)])
    return means.mean(axis=0), means.std(axis=0, ddof=1) / np.sqrt(n_blocks)


def statistical_inefficiency(series: np.ndarray) -> float:
    """g >= 1, the number of consecutive samples per independent one, of series [T, ...] (axis
    0 time, further axes pooled): g = 1 + 2 sum_{k=1}^{K} (1 - k / T) rho(k), rho the pooled
    autocorrelation (each column's mean removed) and K the last lag before rho first drops to
    zero or below (the usual truncation of a noisy tail)."""
    values = np.asarray(series, dtype=float).reshape(len(series), -1)
    deviation = values - values.mean(axis=0)
    products = _lagged_products(deviation, len(values)).sum(axis=1)
    if not products[0] > 0:
        return 1.0
    rho = products / products[0] * len(values) / (len(values) - np.arange(len(values)))
    negative = np.nonzero(rho[1:] <= 0)[0]
    last = negative[0] if len(negative) else len(values) - 1
    lags = np.arange(1, last + 1)
    return float(max(1.0, 1 + 2 * np.sum((1 - lags / len(values)) * rho[1:last + 1])))


def integrated_correlation_time(series: np.ndarray, interval_ps: float) -> float:
    """The integrated autocorrelation time tau (ps) of series [T, ...] sampled every
    ``interval_ps`` (axis 0 time, further axes pooled): tau = g interval / 2, g the
    ``statistical_inefficiency``, so that the standard error of the mean of T samples is
    sigma sqrt(2 tau / (T interval)), sigma the standard deviation of one sample. Independent
    samples give interval / 2; an AR(1) series x_t = phi x_(t-1) + noise gives
    interval (1 + phi) / (2 (1 - phi)). A block's mean is independent of its neighbours' when the
    block is much longer than tau."""
    return statistical_inefficiency(series) * interval_ps / 2


def _block_slices(n_rows: int, n_blocks: int) -> list:
    """n_blocks consecutive equal slices of range(n_rows), the remainder left out."""
    if n_blocks < 2:
        raise ValueError(f"an error estimate needs at least 2 blocks, got n_blocks={n_blocks}")
    size = n_rows // n_blocks
    if size == 0:
        raise ValueError(f"{n_rows} rows (frames, samples) cannot make {n_blocks} blocks")
    return [slice(block * size, (block + 1) * size) for block in range(n_blocks)]


def _frame_chunks(frames: slice, values_per_frame: int) -> list:
    """Consecutive sub-slices of ``frames`` holding at most about _CHUNK_VALUES values each."""
    step = max(1, _CHUNK_VALUES // max(1, values_per_frame))
    return [slice(start, min(start + step, frames.stop))
            for start in range(frames.start, frames.stop, step)]


def _lagged_products(x: np.ndarray, n_lags: int) -> np.ndarray:
    """sum_t x(t) x(t + k) over t = 0 .. T-1-k, for k = 0 .. n_lags-1: [n_lags, ...] from
    x [T, ...] (componentwise, by FFT with zero padding)."""
    n_fft = scipy.fft.next_fast_len(2 * len(x))
    transform = scipy.fft.rfft(x, n=n_fft, axis=0)
    return scipy.fft.irfft(transform * transform.conj(), n=n_fft, axis=0)[:n_lags]


def _origin_counts(n_frames: int, n_lags: int, ndim: int) -> np.ndarray:
    """Number of time origins T - k of each lag k, shaped to divide a [n_lags, ...] array."""
    return (n_frames - np.arange(n_lags)).reshape(-1, *[1] * (ndim - 1))


def angular_momentum_statistics(diagnostics: dict):
    """How well a run conserves its total angular momentum L (NVE; thermostats do not conserve L).

    diagnostics: the columns of a ``diagnostics.csv`` (``rundir.read_diagnostics``): time_ps
    [T] ps and L_x, L_y, L_z [T] amu nm^2/ps.
    Returns (wander, drift): wander = max_t |L(t) - L(0)| (amu nm^2/ps); drift [3] = dL/dt, the
    slopes of least-squares lines through L_x, L_y, L_z against time (amu nm^2/ps^2 = kJ/mol:
    the mean net torque that the drift amounts to).
    """
    time_ps = np.asarray(diagnostics["time_ps"], dtype=float)
    momentum = np.column_stack([diagnostics[f"L_{axis}"] for axis in "xyz"]).astype(float)
    wander = np.max(np.linalg.norm(momentum - momentum[0], axis=-1))
    drift = np.polyfit(time_ps, momentum, 1)[0]
    return wander, drift


def torque_statistics(diagnostics: dict, n_blocks: int = 4):
    """Root mean square of the net torque |tau| over a run, with its block error (kJ/mol).

    diagnostics: the columns of a ``diagnostics.csv`` (``rundir.read_diagnostics``):
    torque_x, torque_y, torque_z [T] kJ/mol, the net torque about the centre of mass. The error of
    the mean square comes from non-overlapping blocks of rows and is propagated to the root.
    Returns (rms, rms_error) in kJ/mol.
    """
    squares = sum(np.asarray(diagnostics[f"torque_{axis}"], dtype=float) ** 2 for axis in "xyz")
    mean_square, mean_square_error = block_average(squares, n_blocks)
    rms = np.sqrt(mean_square)
    return rms, mean_square_error / (2 * rms)

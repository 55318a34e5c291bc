"""Power spectra of time series (e.g. the energies of ``diagnostics.csv``) in wavenumbers."""

import numpy as np
import scipy.fft

from ..units import SPEED_OF_LIGHT_CM_PER_PS, per_ps_to_wavenumber
from .statistics import _lagged_products

__all__ = ["power_spectrum"]


def power_spectrum(series: np.ndarray, dt_ps: float, max_lag_ps=None):
    """Power spectrum of a time series: autocorrelation (mean removed), Blackman window, Fourier.

    series [T] (any unit X) sampled every dt_ps (ps). The autocorrelation
    C(k) = (1/T) sum_t dx(t) dx(t + k), dx = series - its mean, is kept for lags |k| dt up to
    max_lag_ps (default the whole series) and multiplied by a Blackman window that is 1 at zero
    lag and 0 at max_lag_ps (K lags); its Fourier transform is evaluated from zero to the Nyquist
    frequency on a grid of spacing 1 / (n dt), n >= 4 K (zero padding).
    Returns (wavenumber [W] cm^-1; spectrum [W] in X^2 cm, the one-sided spectral density per
    cm^-1, normalised so that its integral over wavenumber (trapezoid rule on the returned grid)
    equals C(0), the variance of the series).
    """
    deviation = np.asarray(series, dtype=float) - np.mean(series)
    n_frames = len(deviation)
    n_lags = n_frames if max_lag_ps is None else min(int(round(max_lag_ps / dt_ps)) + 1, n_frames)
    window = np.blackman(2 * n_lags - 1)[n_lags - 1:]
    correlation = window * _lagged_products(deviation, n_lags) / n_frames
    n_fft = 2 * scipy.fft.next_fast_len(2 * n_lags)
    symmetric = np.zeros(n_fft)
    symmetric[:n_lags] = correlation
    symmetric[n_fft - n_lags + 1:] = correlation[:0:-1]
    two_sided = dt_ps * scipy.fft.rfft(symmetric).real  # X^2 ps, per 1/ps
    frequency = scipy.fft.rfftfreq(n_fft, dt_ps)  # 1/ps
    return per_ps_to_wavenumber(frequency), 2 * two_sided * SPEED_OF_LIGHT_CM_PER_PS

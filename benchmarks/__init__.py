"""Benchmarks of omm-symbreak: the cost of symmetry (``python -m benchmarks``).

Every part times its variants side by side, interleaved in one process, so that their ratios
hold on a noisy machine, and records the machine (cores, torch threads), the repeat count and
every sample next to the median. Results go to ``benchmarks/results/*.json``.
"""

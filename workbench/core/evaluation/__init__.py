"""Scoring a model: metrics, recorded evaluations, slices, the decision threshold and its calibration."""

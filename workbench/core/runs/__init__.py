"""Run folders: locks, metrics, status, launch, comparison, and what model and data a run used."""

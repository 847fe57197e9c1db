"""Many runs: seed groups and Optuna sweeps."""

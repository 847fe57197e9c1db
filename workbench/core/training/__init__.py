"""The training loop and what it needs: checkpoints, ranks, speed-ups, recipe, trackers."""

"""Foundations: settings, typed events, errors, durable files, the run-folder layout, hardware probes.

Imports nothing else from workbench."""

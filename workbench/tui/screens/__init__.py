"""Screens pushed over the panes: help, confirmations, run details, the compare view."""

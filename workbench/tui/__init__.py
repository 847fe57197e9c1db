"""The terminal workbench: a Textual face over `workbench.core` (which never imports Textual)."""

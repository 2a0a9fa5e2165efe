"""Renderers: how a report is shown (console, JSON, HTML). Checks never print; renderers do."""

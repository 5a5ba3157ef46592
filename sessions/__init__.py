"""Canonical session logs: reading and validating them, splitting by time, synthesising planted ones."""

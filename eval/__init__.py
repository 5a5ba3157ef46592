"""Offline metrics on the sessions after the training period: hit rate and coverage."""

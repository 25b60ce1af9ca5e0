"""Builds the edgekeep model set: shipped models, generated models, goldens and manifest."""

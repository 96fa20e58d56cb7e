"""Hostile-input suite (generated inputs through every input path of the command line)."""

"""Tests of the web page (tareplanner serve)."""

"""Capture, store and show the output of every process devstack runs."""

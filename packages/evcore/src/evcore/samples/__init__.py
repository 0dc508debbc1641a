"""Runnable samples (``python -m evcore.samples.hello``)."""

"""Experiment drivers that chain several training runs (``weaktube bench ...``)."""

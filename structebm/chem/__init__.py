"""Molecules as graphs: conversions, vocabularies, valence rules and generation metrics."""

"""Datasets, DataModules and loading helpers (data root: $STRUCTEBM_DATA)."""

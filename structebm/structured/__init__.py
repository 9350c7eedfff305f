"""Exact inference for chains and for categorical spaces small enough to enumerate."""

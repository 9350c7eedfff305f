"""structebm: structured and scientific energy-based models in PyTorch."""

__version__ = "0.1.0"

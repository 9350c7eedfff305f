"""structebm."""

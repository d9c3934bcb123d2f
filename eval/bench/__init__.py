"""``akhbar bench``: speed figures, each against a baseline measured in the same run."""

"""Lightning callbacks: when, and on which parameters, regdrop's regularizers act."""

# Each line below brings in one file's public names (its ``__all__``).

__all__: list[str] = []

"""Modules that hold regularization settings and call :mod:`regdrop.functional`."""

# Each line below brings in one file's public names (its ``__all__``).
# -- dropout modules (dropout.py, noise.py, embedding.py)
# -- recurrent layers (rnn.py)
# -- finding and setting the dropout rates of a model (rates.py)

__all__: list[str] = []

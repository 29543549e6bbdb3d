"""The math of regdrop, written once: pure functions on tensors with an explicit ``training`` flag."""

from regdrop.functional._validation import check_nonnegative, check_positive_int, check_rate

# Each line below brings in one file's public names (its ``__all__``).
# -- dropout family (dropout.py, noise.py, embedding.py, dropconnect.py)
# -- weight constraints (constraints.py)
# -- recurrent math (rnn.py, zoneout.py)

__all__ = ["check_nonnegative", "check_positive_int", "check_rate"]

"""The math of regdrop, written once: pure functions on tensors with an explicit ``training`` flag."""

__all__: list[str] = []

# Each file's public names, added in pairs of lines like:
#   from regdrop.functional import noise as _noise
#   from regdrop.functional.noise import *  (noqa F403: the names are listed in __all__)
#   __all__ += _noise.__all__
# -- dropout family (dropout.py, noise.py, embedding.py, dropconnect.py)
from regdrop.functional import dropout as _dropout
from regdrop.functional.dropout import *  # noqa: F403
__all__ += _dropout.__all__
from regdrop.functional import noise as _noise
from regdrop.functional.noise import *  # noqa: F403
__all__ += _noise.__all__
from regdrop.functional import embedding as _embedding
from regdrop.functional.embedding import *  # noqa: F403
__all__ += _embedding.__all__
from regdrop.functional import dropconnect as _dropconnect
from regdrop.functional.dropconnect import *  # noqa: F403
__all__ += _dropconnect.__all__
from regdrop.functional import concrete as _concrete
from regdrop.functional.concrete import *  # noqa: F403
__all__ += _concrete.__all__
# -- activation penalties (activation.py)
from regdrop.functional import activation as _activation
from regdrop.functional.activation import *  # noqa: F403
__all__ += _activation.__all__
# -- weight constraints (constraints.py)
from regdrop.functional import constraints as _constraints
from regdrop.functional.constraints import *  # noqa: F403
__all__ += _constraints.__all__
# -- recurrent math (rnn.py)
from regdrop.functional import rnn as _rnn
from regdrop.functional.rnn import *  # noqa: F403
__all__ += _rnn.__all__

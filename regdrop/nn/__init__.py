"""Modules that hold regularization settings and call :mod:`regdrop.functional`."""

__all__: list[str] = []

# Each file's public names, added like:
#   from regdrop.nn import noise as _noise
#   from regdrop.nn.noise import *  (noqa F403: the names are listed in __all__)
#   __all__ += _noise.__all__
# -- dropout modules (dropout.py, noise.py, embedding.py)
from regdrop.nn import dropout as _dropout
from regdrop.nn.dropout import *  # noqa: F403
__all__ += _dropout.__all__
from regdrop.nn import noise as _noise
from regdrop.nn.noise import *  # noqa: F403
__all__ += _noise.__all__
from regdrop.nn import embedding as _embedding
from regdrop.nn.embedding import *  # noqa: F403
__all__ += _embedding.__all__
# -- learned rates (concrete.py)
from regdrop.nn import concrete as _concrete
from regdrop.nn.concrete import *  # noqa: F403
__all__ += _concrete.__all__
# -- activation penalties (activation.py)
from regdrop.nn import activation as _activation
from regdrop.nn.activation import *  # noqa: F403
__all__ += _activation.__all__
# -- recurrent layers (rnn.py)
from regdrop.nn import rnn as _rnn
from regdrop.nn.rnn import *  # noqa: F403
__all__ += _rnn.__all__
# -- finding and setting the dropout rates of a model (rates.py)
from regdrop.nn import rates as _rates
from regdrop.nn.rates import *  # noqa: F403
__all__ += _rates.__all__

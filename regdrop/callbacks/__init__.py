"""Lightning callbacks: when, and on which parameters, regdrop's regularizers act."""

__all__: list[str] = []

# Each file's public names, added like:
#   from regdrop.callbacks import constraints as _constraints
#   from regdrop.callbacks.constraints import *  # noqa: F403
#   __all__ += _constraints.__all__
from regdrop.callbacks import constraints as _constraints
from regdrop.callbacks.constraints import *  # noqa: F403
__all__ += _constraints.__all__

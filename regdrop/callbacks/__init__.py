"""Lightning callbacks: when, and on which parameters, regdrop's regularizers act."""

__all__: list[str] = []

# Each file's public names, added like:
#   from regdrop.callbacks import constraints as _constraints
#   from regdrop.callbacks.constraints import *  (noqa F403: the names are listed in __all__)
#   __all__ += _constraints.__all__
from regdrop.callbacks import scheduler as _scheduler
from regdrop.callbacks.scheduler import *  # noqa: F403
__all__ += _scheduler.__all__
from regdrop.callbacks import monitor as _monitor
from regdrop.callbacks.monitor import *  # noqa: F403
__all__ += _monitor.__all__
from regdrop.callbacks import uncertainty as _uncertainty
from regdrop.callbacks.uncertainty import *  # noqa: F403
__all__ += _uncertainty.__all__
from regdrop.callbacks import constraints as _constraints
from regdrop.callbacks.constraints import *  # noqa: F403
__all__ += _constraints.__all__
from regdrop.callbacks import early_stopping as _early_stopping
from regdrop.callbacks.early_stopping import *  # noqa: F403
__all__ += _early_stopping.__all__
from regdrop.callbacks import rng as _rng
from regdrop.callbacks.rng import *  # noqa: F403
__all__ += _rng.__all__
from regdrop.callbacks import concrete as _concrete
from regdrop.callbacks.concrete import *  # noqa: F403
__all__ += _concrete.__all__

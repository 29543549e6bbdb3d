"""regdrop: regularization for recurrent models in PyTorch Lightning."""

from regdrop import functional, nn

__all__ = ["functional", "nn"]
__version__ = "0.1.0"

from regdrop import uncertainty as _uncertainty
from regdrop.uncertainty import *  # noqa: F403
__all__ += _uncertainty.__all__

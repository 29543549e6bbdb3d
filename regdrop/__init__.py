"""regdrop: regularization for recurrent models in PyTorch Lightning."""

from regdrop import functional, nn

__all__ = ["functional", "nn"]
__version__ = "0.1.0"

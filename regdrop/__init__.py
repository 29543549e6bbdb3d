"""regdrop: regularization for recurrent models in PyTorch Lightning."""

from regdrop import functional, nn

__all__ = ["callbacks", "functional", "nn"]  # noqa: F405 (callbacks: loaded on first access)
__version__ = "0.1.0"

from regdrop import uncertainty as _uncertainty
from regdrop.uncertainty import *  # noqa: F403
__all__ += _uncertainty.__all__


def __getattr__(name: str) -> object:
    # regdrop.callbacks imports Lightning: load it on first use, so `import regdrop` stays light
    if name == "callbacks":
        import importlib

        return importlib.import_module("regdrop.callbacks")
    raise AttributeError(f"module 'regdrop' has no attribute {name!r}")

"""Which parameters of a model the constraints and the monitor look at, and how a weight splits into units.

One home for what :mod:`regdrop.callbacks.constraints` projects and :mod:`regdrop.callbacks.monitor`
measures: every parameter of a model once, with the module that holds it, and the layout of its
output units. A unit is a slice along ``dim`` (0 for ``Linear``, ``Conv*d`` and recurrent weights;
1 for ``ConvTranspose*d``, whose weight is ``(in_channels, out_channels // groups, *kernel)``). In a
grouped transposed convolution the output unit ``(g, j)`` is ``weight[g*in_g:(g+1)*in_g, j]``, so its
units straddle dims 0 and 1; :func:`unit_rows` gathers them into rows and :func:`set_unit_rows_`
writes rows back.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from regdrop._modules import CONV_MODULES, CONV_TRANSPOSE_MODULES

__all__: list[str] = []

# Public classes only (regdrop._modules); the lazy layers subclass these.
CONV_TRANSPOSE = CONV_TRANSPOSE_MODULES
CONV = CONV_MODULES


def is_bias(local_name: str) -> bool:
    return local_name.startswith("bias")


def named_module_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, nn.Parameter]]:
    """``(full name, module, name in the module, parameter)`` for each parameter of ``model``, once."""
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for local_name, param in module.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            yield (f"{module_name}.{local_name}" if module_name else local_name), module, local_name, param


def unit_layout(module: nn.Module, local_name: str, param: Tensor) -> tuple[int, int]:
    """``(dim, groups)``: the dimension that indexes the output units, and the groups they straddle (1 = none)."""
    if isinstance(module, CONV_TRANSPOSE) and local_name == "weight" and param.dim() >= 2:
        return 1, int(module.groups)
    return 0, 1


def unit_rows(weight: Tensor, dim: int, groups: int) -> Tensor:
    """``weight`` as a 2-D tensor with one row per output unit (a view when ``groups == 1`` and ``dim == 0``)."""
    if groups == 1:
        return weight.movedim(dim, 0).flatten(1) if weight.dim() >= 2 else weight.reshape(1, -1)
    in_ch, out_g, *kernel = weight.shape
    return weight.view(groups, in_ch // groups, out_g, *kernel).transpose(1, 2).reshape(groups * out_g, -1)


def set_unit_rows_(weight: Tensor, rows: Tensor, groups: int) -> None:
    """Write the rows of :func:`unit_rows` ``(weight, 1, groups)`` back into a grouped transposed weight."""
    in_ch, out_g, *kernel = weight.shape
    weight.copy_(rows.view(groups, out_g, in_ch // groups, *kernel).transpose(1, 2).reshape(weight.shape))

"""The checks every dropout module must pass (STYLE rule 6), run over :data:`tests.nn.cases.CASES`."""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence

from tests.nn.cases import CASES, Case, Input

pytestmark = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


def _data(x: Input) -> Tensor:
    return x.data if isinstance(x, PackedSequence) else x


def assert_same(a: Input, b: Input) -> None:
    """Exact equality, including a PackedSequence's indices."""
    assert type(a) is type(b)
    if isinstance(a, PackedSequence):
        assert isinstance(b, PackedSequence)
        assert torch.equal(a.batch_sizes, b.batch_sizes)
        assert torch.equal(a.sorted_indices, b.sorted_indices)
        assert torch.equal(a.unsorted_indices, b.unsorted_indices)
    assert _data(a).dtype == _data(b).dtype
    assert torch.equal(_data(a), _data(b))


def seeded(fn: Callable[[], Input], seed: int = 0) -> Input:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _differentiable(case: Case, module: nn.Module, dtype: torch.dtype) -> tuple[list[Tensor], Callable[..., Tensor]]:
    """The float leaves a module's output depends on (input and parameters), and the output as their function."""
    x = case.input(dtype)
    names = [name for name, _ in module.named_parameters()]
    takes_input = _data(x).is_floating_point()
    leaves = [_data(x).detach().clone()] if takes_input else []
    leaves += [p.detach().clone() for _, p in module.named_parameters()]

    def run(*tensors: Tensor) -> Tensor:
        inp: Input = x
        if takes_input:
            inp = x._replace(data=tensors[0]) if isinstance(x, PackedSequence) else tensors[0]
            tensors = tensors[1:]
        out = functional_call(module, dict(zip(names, tensors, strict=True)), (inp,))
        return _data(out)

    return leaves, run


def test_repr(case: Case) -> None:
    m = case.module()
    assert repr(m) == case.repr
    assert m.extra_repr() in repr(m)


def test_pickle(case: Case) -> None:
    m = case.module()
    m2 = pickle.loads(pickle.dumps(m))
    assert repr(m2) == repr(m)
    assert m2.training == m.training
    x = case.input(torch.float32)
    assert_same(seeded(lambda: m2(x)), seeded(lambda: m(x)))


def test_state_dict_round_trip(case: Case) -> None:
    m = case.module()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)  # differ from a fresh module's initialization
    buffer = io.BytesIO()
    torch.save(m.state_dict(), buffer)
    buffer.seek(0)
    fresh = case.module()
    result = fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert not result.missing_keys and not result.unexpected_keys
    assert fresh.state_dict().keys() == m.state_dict().keys()
    x = case.input(torch.float32)
    assert_same(seeded(lambda: fresh(x)), seeded(lambda: m(x)))
    fresh.eval()
    m.eval()
    assert_same(fresh(x), m(x))


def test_eval_is_deterministic_and_documented(case: Case) -> None:
    m = case.module().eval()
    x = case.input(torch.float32)
    rng_before = torch.get_rng_state()
    first, second = m(x), m(x)
    assert torch.equal(torch.get_rng_state(), rng_before), "eval() must not draw random numbers"
    assert_same(first, second)
    assert_same(first, case.eval_output(m, x))


def test_train_is_seeded_deterministic_and_redrawn(case: Case) -> None:
    m = case.module().train()
    x = case.input(torch.float32)
    a = seeded(lambda: m(x), seed=7)
    assert_same(a, seeded(lambda: m(x), seed=7))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        first, second = m(x), m(x)
    assert_same(first, a)
    assert not torch.equal(_data(first), _data(second)), "a fresh mask must be drawn at every call"
    assert not torch.equal(_data(first), _data(case.eval_output(m, x))), "training must regularize"


def test_functional_form_agrees(case: Case) -> None:
    m = case.module().train()
    x = case.input(torch.float32)
    assert_same(seeded(lambda: m(x)), seeded(lambda: case.functional(m, x)))


def test_gradients_flow(case: Case) -> None:
    m = case.module().train()
    leaves, run = _differentiable(case, m, torch.float32)
    for leaf in leaves:
        leaf.requires_grad_(True)
    out = seeded(lambda: run(*leaves))
    (out * torch.linspace(0.5, 1.5, out.numel()).view_as(out)).sum().backward()
    for leaf in leaves:
        assert leaf.grad is not None and leaf.grad.shape == leaf.shape
        assert torch.isfinite(leaf.grad).all()
        assert leaf.grad.abs().sum() > 0


def test_gradcheck_float64(case: Case) -> None:
    m = case.module().double().train()
    leaves, run = _differentiable(case, m, torch.float64)
    leaves = [leaf.requires_grad_(True) for leaf in leaves]
    # The mask is redrawn at each call, so gradcheck sees a fixed function only under a fixed seed.
    fixed = lambda *t: seeded(lambda: run(*t))  # noqa: E731
    assert torch.autograd.gradcheck(fixed, tuple(leaves), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_keeps_dtype(case: Case, dtype: torch.dtype) -> None:
    m = case.module().to(dtype).train()
    x = case.input(dtype)
    out = m(x)
    assert _data(out).dtype == dtype
    assert torch.isfinite(_data(out)).all()


def test_autocast_bfloat16(case: Case) -> None:
    m = case.module().train()
    x = case.input(torch.float32)
    lin = nn.Linear(_data(x).shape[-1], _data(x).shape[-1]) if _data(x).is_floating_point() else None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if lin is None:
            out = _data(m(x))
            head = nn.Linear(out.shape[-1], 3)
            out = head(out)  # the module's output feeds an autocast matmul
            params = list(m.parameters()) + list(head.parameters())
        else:
            h = lin(_data(x))  # bfloat16 under autocast
            h_in: Input = x._replace(data=h) if isinstance(x, PackedSequence) else h
            out = _data(m(h_in))
            assert out.dtype == torch.bfloat16
            params = list(lin.parameters())
    out.float().square().sum().backward()
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all()


def _skip_learned(m: nn.Module) -> None:
    if getattr(type(m), "learned_rate_names", ()):
        pytest.skip("a learned rate is a parameter, not a settable attribute (tests/nn/test_concrete.py)")


def test_zero_rate_is_identity_in_training(case: Case) -> None:
    m = case.module().train()
    _skip_learned(m)
    names = type(m).rate_names or ("sigma",)  # GaussianNoise has no rate; sigma=0 turns it off
    for name in names:
        setattr(m, name, 0.0)
    x = case.input(torch.float32)
    assert_same(m(x), case.eval_output(m, x))


def test_rate_is_a_plain_reassignable_attribute(case: Case) -> None:
    m = case.module()
    _skip_learned(m)
    for name in type(m).rate_names:
        assert isinstance(getattr(m, name), float)
        assert name not in m.state_dict()
        setattr(m, name, 1.5)
        with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1[\])], got 1.5"):
            m(case.input(torch.float32))


def test_rate_one_gives_zeros_not_nan(case: Case) -> None:
    m = case.module().train()
    _skip_learned(m)
    if "p" not in type(m).rate_names:
        pytest.skip("no dropout rate")
    x = case.input(torch.float32)
    if type(m).__name__ == "GaussianDropout":
        m.p = 1.0  # infinite variance: refused, not NaN
        with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.0"):
            m(x)
        return
    m.p = 1.0
    out = _data(m(x))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize(
    ("bad", "error", "shown"),
    [
        (-0.1, ValueError, "-0.1"),
        (1.5, ValueError, "1.5"),
        (math.nan, ValueError, "nan"),
        ("0.5", TypeError, "'0.5'"),
        (None, TypeError, "None"),
        (True, TypeError, "True"),
    ],
)
def test_constructor_rejects_bad_rate(case: Case, bad: object, error: type[Exception], shown: str) -> None:
    name = case.cls.rate_names[0] if case.cls.rate_names else "sigma"
    if name == "sigma" and bad == 1.5:
        pytest.skip("any sigma >= 0 is valid")
    with pytest.raises(error, match=rf"^{name} must be .*{shown}"):
        case.module(**{name: bad})

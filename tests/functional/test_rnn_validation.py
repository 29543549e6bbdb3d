"""lstm_scan / gru_scan and the C++ ops: every bad argument gets a named error, never a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from regdrop.functional.rnn import extension_available, gru_scan, lstm_scan

needs_extension = pytest.mark.skipif(not extension_available(), reason="no C++ compiler to build the time loop")

N, H = 3, 4


def _args(kind: str, rows: int = 8, **replace):
    """Valid arguments for batch_sizes [3, 2, 2, 1] (``rows`` rows), with ``replace`` swapped in."""
    g = 4 if kind == "lstm" else 3
    args = {
        "xw": torch.randn(rows, g * H),
        "h0": torch.zeros(N, H),
        "c0": torch.zeros(N, H),
        "w_hh": torch.randn(g * H, H),
        "b_hh": torch.randn(g * H),
        "mask": torch.ones(N, H),
        "batch_sizes": [3, 2, 2, 1],
        "reverse": False,
    }
    if kind == "gru":
        del args["c0"]
    else:
        del args["b_hh"]
    args.update(replace)
    return args


def _call(kind: str, args: dict):
    fn = lstm_scan if kind == "lstm" else gru_scan
    return fn(**args)


BAD = [
    ("mask with fewer rows", {"mask": torch.ones(1, H)}, ValueError, r"mask must have shape \(3, 4\), got \(1, 4\)"),
    ("mask too wide", {"mask": torch.ones(N, H + 1)}, ValueError, r"mask must have shape \(3, 4\), got \(3, 5\)"),
    (
        "mask float64",
        {"mask": torch.ones(N, H, dtype=torch.float64)},
        TypeError,
        r"mask must have the dtype of the input, torch.float32, got torch.float64",
    ),
    ("mask int", {"mask": torch.ones(N, H, dtype=torch.int64)}, TypeError, r"mask must be a floating-point tensor"),
    ("mask on meta", {"mask": torch.ones(N, H, device="meta")}, ValueError, r"mask must be on the input's device"),
    (
        "sizes sum too big",
        {"batch_sizes": [3, 3, 2, 1]},
        ValueError,
        r"batch_sizes must sum to the number of rows of the data, 8, got \[3, 3, 2, 1\] \(sum 9\)",
    ),
    ("sizes increasing", {"batch_sizes": [2, 2, 3, 1]}, ValueError, r"batch_sizes must be non-increasing"),
    ("sizes negative", {"batch_sizes": [3, 3, 3, -1]}, ValueError, r"must be >= 0, got -1"),
    (
        "first size != N",
        {"batch_sizes": [2, 2, 2, 2]},
        ValueError,
        r"batch_sizes\[0\] must equal the number of rows of h0, 3, got 2",
    ),
    ("sizes not ints", {"batch_sizes": [3.0, 2, 2, 1]}, TypeError, r"batch_sizes must hold ints"),
    ("sizes bools", {"batch_sizes": [True, True]}, TypeError, r"batch_sizes must hold ints"),
    ("sizes a string", {"batch_sizes": "3221"}, TypeError, r"batch_sizes must be a sequence of ints, got str"),
    ("h0 float64", {"h0": torch.zeros(N, H, dtype=torch.float64)}, TypeError, r"h0 must have the dtype of the input"),
    ("h0 3-D", {"h0": torch.zeros(1, N, H)}, ValueError, r"h0 must be 2-D \(N, H\), got shape \(1, 3, 4\)"),
    ("xw 1-D", {"xw": torch.randn(8)}, ValueError, r"xw must be 2-D"),
    ("xw int", {"xw": torch.ones(8, 16, dtype=torch.long)}, TypeError, r"xw must be a floating-point tensor"),
    ("w_hh transposed", {"w_hh": "T"}, ValueError, r"w_hh must have shape"),
    ("reverse not bool", {"reverse": 1}, TypeError, r"reverse must be a bool, got int 1"),
    ("h0 not a tensor", {"h0": [[0.0] * H] * N}, TypeError, r"h0 must be a Tensor, got list"),
    ("zoneout above 1", {"zoneout": 1.5}, ValueError, r"zoneout must be in \[0, 1\], got 1.5"),
    ("zoneout negative", {"zoneout": -0.1}, ValueError, r"zoneout must be in \[0, 1\], got -0.1"),
    ("zoneout a string", {"zoneout": "0.1"}, TypeError, r"zoneout must be a float in \[0, 1\], got str"),
    ("training not bool", {"training": 1}, TypeError, r"training must be a bool, got int 1"),
    ("generator a seed", {"generator": 3}, TypeError, r"generator must be a torch.Generator or None, got int"),
]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize(("replace", "error", "pattern"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_scan_arguments_are_named(kind, replace, error, pattern, monkeypatch):
    replace = dict(replace)
    if replace.get("w_hh") == "T":
        replace["w_hh"] = _args(kind)["w_hh"].t()
    if "xw" in replace and replace["xw"].dim() == 2:
        replace["xw"] = replace["xw"][:, : (4 if kind == "lstm" else 3) * H]
    for extension in ("1", "0"):  # the same errors whether the compiled loop runs or not
        monkeypatch.setenv("REGDROP_EXTENSION", extension)
        with pytest.raises(error, match=pattern):
            _call(kind, _args(kind, **replace))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gru_and_lstm_bias_and_c0_shapes(kind):
    if kind == "lstm":
        with pytest.raises(ValueError, match=r"c0 must have shape \(3, 4\), got \(2, 4\)"):
            _call(kind, _args(kind, c0=torch.zeros(2, H)))
    else:
        with pytest.raises(ValueError, match=r"b_hh must have shape \(12,\), got \(4,\)"):
            _call(kind, _args(kind, b_hh=torch.zeros(H)))


P = 2  # proj_size in the projection cases: h is (N, P), c is (N, H)


def _proj_args(**replace):
    args = _args("lstm", h0=torch.zeros(N, P), w_hh=torch.randn(4 * H, P), mask=torch.ones(N, P))
    args["w_hr"] = torch.randn(P, H)
    args.update(replace)
    return args


BAD_PROJ = [
    (
        "w_hr transposed",
        {"w_hr": torch.randn(H, P)},
        ValueError,
        r"w_hr must be 2-D \(P, H\) with P = the width of h0, 2, got shape \(4, 2\)",
    ),
    ("w_hr 1-D", {"w_hr": torch.randn(P)}, ValueError, r"w_hr must be 2-D \(P, H\)"),
    (
        "w_hr too narrow",
        {"w_hr": torch.randn(P, H - 1)},
        ValueError,
        r"xw must have 4 \* H = 12 columns .* w_hr of shape \(2, 3\)",
    ),
    (
        "w_hr float64",
        {"w_hr": torch.randn(P, H, dtype=torch.float64)},
        TypeError,
        r"w_hr must have the dtype of the input",
    ),
    ("w_hr on meta", {"w_hr": torch.randn(P, H, device="meta")}, ValueError, r"w_hr must be on the input's device"),
    ("w_hr a list", {"w_hr": [[0.0] * H] * P}, TypeError, r"w_hr must be a Tensor, got list"),
    (
        "w_hh for h of width H",
        {"w_hh": torch.randn(4 * H, H)},
        ValueError,
        r"w_hh must have shape \(16, 2\), got \(16, 4\)",
    ),
    ("mask of width H", {"mask": torch.ones(N, H)}, ValueError, r"mask must have shape \(3, 2\), got \(3, 4\)"),
    ("c0 of width P", {"c0": torch.zeros(N, P)}, ValueError, r"c0 must have shape \(3, 4\), got \(3, 2\)"),
]


@pytest.mark.parametrize(("replace", "error", "pattern"), [b[1:] for b in BAD_PROJ], ids=[b[0] for b in BAD_PROJ])
def test_bad_projection_arguments_are_named(replace, error, pattern, monkeypatch):
    for extension in ("1", "0"):
        monkeypatch.setenv("REGDROP_EXTENSION", extension)
        with pytest.raises(error, match=pattern):
            lstm_scan(**_proj_args(**replace))


def test_projection_and_zoneout_run_with_valid_arguments():
    out, hn, cn = lstm_scan(**_proj_args(zoneout=0.2, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (8, P) and hn.shape == (N, P) and cn.shape == (N, H)
    out, hn = gru_scan(**_args("gru", zoneout=0.2, training=False))
    assert out.shape == (8, H)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_empty_batch_and_no_steps_run(kind):
    empty = {"h0": torch.zeros(0, H), "mask": torch.ones(0, H)}
    if kind == "lstm":
        empty["c0"] = torch.zeros(0, H)
    out = _call(kind, _args(kind, rows=0, batch_sizes=[0, 0], **empty))
    assert out[0].shape == (0, H) and out[1].shape == (0, H)
    out = _call(kind, _args(kind, rows=0, batch_sizes=[]))
    assert out[0].shape == (0, H) and torch.equal(out[1], torch.zeros(N, H))


# Direct calls of the C++ ops, each in a fresh interpreter: a segfault or an abort fails the
# test (by its exit status) instead of killing pytest.
OP_CASES = {
    "gru packed sizes beyond the rows": "gru_forward(t(7, 12), t(2, 4), t(12, 4), e, e, [2, 2, 2, 2], False)",
    "lstm packed sizes beyond the rows": "lstm_forward(t(7, 16), t(2, 4), t(2, 4), t(16, 4), e, [2, 2, 2, 2], False)",
    "lstm mask with one row": "lstm_forward(t(8, 16), t(2, 4), t(2, 4), t(16, 4), t(1, 4), [2, 2, 2, 2], False)",
    "gru mask with one row": "gru_forward(t(8, 12), t(2, 4), t(12, 4), t(12), t(1, 4), [2, 2, 2, 2], False)",
    "gru increasing sizes": "gru_forward(t(6, 12), t(3, 4), t(12, 4), e, e, [1, 2, 3], False)",
    "lstm first size above N": "lstm_forward(t(8, 16), t(2, 4), t(2, 4), t(16, 4), e, [4, 4], False)",
    "lstm negative size": "lstm_forward(t(2, 16), t(2, 4), t(2, 4), t(16, 4), e, [2, -1, 1], False)",
    "lstm wrong w_hh": "lstm_forward(t(8, 16), t(2, 4), t(2, 4), t(4, 16), e, [2, 2, 2, 2], False)",
    "gru bias too short": "gru_forward(t(8, 12), t(2, 4), t(12, 4), t(3), e, [2, 2, 2, 2], False)",
    "lstm float64 h0": "lstm_forward(t(8, 16), t(2, 4).double(), t(2, 4), t(16, 4), e, [2, 2, 2, 2], False)",
    "lstm non-contiguous xw": "lstm_forward(t(16, 8).t(), t(2, 4), t(2, 4), t(16, 4), e, [2, 2, 2, 2], False)",
    "lstm 1-D h0": "lstm_forward(t(8, 16), t(4), t(2, 4), t(16, 4), e, [2, 2, 2, 2], False)",
    "lstm int xw": "lstm_forward(t(8, 16).long(), t(2, 4).long(), t(2, 4).long(), t(16, 4).long(), e, [2]*4, False)",
    "lstm_backward short acts": "lstm_backward(t(8, 4), t(2, 4), t(2, 4), t(5, 16), t(8, 4), t(8, 4), t(16, 4), e, "
    "[2, 2, 2, 2], False)",
    "gru_backward sizes beyond rows": "gru_backward(t(7, 4), t(2, 4), t(7, 12), t(7, 4), t(7, 4), t(12, 4), e, "
    "[2, 2, 2, 2], False)",
    "gru_backward mask one row": "gru_backward(t(8, 4), t(2, 4), t(8, 12), t(8, 4), t(8, 4), t(12, 4), t(1, 4), "
    "[2, 2, 2, 2], False)",
    # zoneout and projection operands
    "lstm zone_h one row short": "lstm_forward(*LF, zone_h=z(7, 4), zone_c=z(8, 4))",
    "lstm zone_c too narrow": "lstm_forward(*LF, zone_h=z(8, 4), zone_c=z(8, 3))",
    "lstm zone_h without zone_c": "lstm_forward(*LF, zone_h=z(8, 4))",
    "lstm zone_c without zone_h": "lstm_forward(*LF, zone_c=z(8, 4))",
    "lstm zone masks and zone_p": "lstm_forward(*LF, zone_h=z(8, 4), zone_c=z(8, 4), zone_p=0.5)",
    "lstm zone_p above 1": "lstm_forward(*LF, zone_p=1.5)",
    "lstm zone_p negative": "lstm_forward(*LF, zone_p=-0.5)",
    "lstm zone_p nan": "lstm_forward(*LF, zone_p=float('nan'))",
    "lstm zone_h float": "lstm_forward(*LF, zone_h=t(8, 4), zone_c=z(8, 4))",
    "lstm zone_h non-contiguous": "lstm_forward(*LF, zone_h=z(4, 8).t(), zone_c=z(8, 4))",
    "lstm w_hr transposed": "lstm_forward(t(8, 16), t(2, 2), t(2, 4), t(16, 2), e, [2] * 4, False, t(4, 2))",
    "lstm w_hr missing, P != H": "lstm_forward(t(8, 16), t(2, 2), t(2, 4), t(16, 2), e, [2] * 4, False)",
    "lstm w_hr float64": "lstm_forward(t(8, 16), t(2, 2), t(2, 4), t(16, 2), e, [2] * 4, False, t(2, 4).double())",
    "lstm w_hh for width H with w_hr": "lstm_forward(t(8, 16), t(2, 2), t(2, 4), t(16, 4), e, [2] * 4, False, t(2, 4))",
    "lstm mask of width H with w_hr": "lstm_forward(t(8, 16), t(2, 2), t(2, 4), t(16, 2), t(2, 4), [2] * 4, False, "
    "t(2, 4))",
    "lstm_backward zone_h short": "lstm_backward(*LB, zone_h=z(7, 4), zone_c=z(8, 4))",
    "lstm_backward zone_p above 1": "lstm_backward(*LB, zone_p=2.0)",
    "lstm_backward w_hr wrong": "lstm_backward(t(8, 2), t(2, 2), t(2, 4), t(8, 16), t(8, 4), t(8, 4), t(16, 2), e, "
    "[2] * 4, False, t(4, 2))",
    "lstm_backward dout of width H with w_hr": "lstm_backward(t(8, 4), t(2, 2), t(2, 4), t(8, 16), t(8, 4), t(8, 4), "
    "t(16, 2), e, [2] * 4, False, t(2, 4))",
    "gru zone_h too wide": "gru_forward(t(8, 12), t(2, 4), t(12, 4), e, e, [2] * 4, False, z(8, 5))",
    "gru zone_h and zone_p": "gru_forward(t(8, 12), t(2, 4), t(12, 4), e, e, [2] * 4, False, z(8, 4), 0.2)",
    "gru zone_p above 1": "gru_forward(t(8, 12), t(2, 4), t(12, 4), e, e, [2] * 4, False, None, 1.01)",
    "gru_backward zone_h short": "gru_backward(t(8, 4), t(2, 4), t(8, 12), t(8, 4), t(8, 4), t(12, 4), e, [2] * 4, "
    "False, t(2, 4))",
    "gru_backward zone_p negative": "gru_backward(t(8, 4), t(2, 4), t(8, 12), t(8, 4), t(8, 4), t(12, 4), e, [2] * 4, "
    "False, None, -1.0)",
}


@needs_extension
def test_direct_op_calls_with_bad_sizes_raise_and_never_crash():
    script = textwrap.dedent("""
        import torch
        from regdrop.functional.rnn import extension_available
        assert extension_available()
        ops = torch.ops.regdrop_scan
        t = lambda *shape: torch.randn(*shape)
        e = torch.empty(0)
        z = lambda *shape: torch.rand(*shape) < 0.5
        LF = (t(8, 16), t(2, 4), t(2, 4), t(16, 4), e, [2, 2, 2, 2], False)  # a valid lstm_forward call
        LB = (t(8, 4), t(2, 4), t(2, 4), t(8, 16), t(8, 4), t(8, 4), t(16, 4), e, [2, 2, 2, 2], False)
        ops.lstm_forward(*LF, zone_h=z(8, 4), zone_c=z(8, 4))  # valid calls pass
        ops.lstm_backward(*LB, zone_p=0.5)
        ops.gru_forward(t(8, 12), t(2, 4), t(12, 4), e, e, [2] * 4, False, z(8, 4))
        ops.lstm_forward(t(8, 16), t(2, 2), t(2, 4), t(16, 2), t(2, 2), [2] * 4, False, t(2, 4))
        cases = {cases!r}
        for name, call in cases.items():
            try:
                eval("ops." + call)
            except RuntimeError as err:
                assert "regdrop_scan::" in str(err), (name, str(err))
                print("refused:", name, "|", str(err).splitlines()[0])
            else:
                raise SystemExit("accepted: " + name)
        print("ALL REFUSED")
    """).format(cases=OP_CASES)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "ALL REFUSED" in result.stdout
    assert result.stdout.count("refused:") == len(OP_CASES)

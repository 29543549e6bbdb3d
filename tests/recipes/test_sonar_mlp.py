"""recipes/sonar_mlp.py: the tutorial's network and variants, MaxNorm on the hidden layers, cross-validation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import sonar_mlp
from common.datasets import load_sonar
from regdrop.callbacks import MaxNorm
from sonar_mlp import VARIANTS, SonarMLP, cross_validate, fold_trainer


def test_network_is_the_tutorials() -> None:
    model = SonarMLP(input_dropout=0.2, hidden_dropout=0.1)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(60, 60), (60, 30), (30, 1)]
    assert all(float(m.bias.abs().max()) == 0.0 for m in linears)  # Keras starts biases at zero
    for m in linears:  # Glorot-uniform bound
        assert float(m.weight.abs().max()) <= math.sqrt(6.0 / (m.in_features + m.out_features))
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.2, 0.1, 0.1]
    assert "input_dropout=0.2, hidden_dropout=0.1" in repr(model)
    assert VARIANTS["baseline"]["lr"] == 0.01 and VARIANTS["input"]["lr"] == VARIANTS["hidden"]["lr"] == 0.1


def test_max_norm_binds_the_hidden_layers_only() -> None:
    x, y = load_sonar()
    x = (x - x.mean(0)) / x.std(0)
    torch.manual_seed(0)
    model = SonarMLP(hidden_dropout=0.2, lr=0.1, momentum=0.9)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(10.0)  # every row starts far above norm 3
    trainer = fold_trainer("hidden", epochs=1)
    assert [type(cb) for cb in trainer.callbacks if isinstance(cb, MaxNorm)] == [MaxNorm]
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
    for layer in (model.hidden[1], model.hidden[4]):
        assert float(layer.weight.norm(dim=1).max()) <= 3.0 + 1e-4
    assert float(model.output.weight.norm(dim=1).max()) > 3.0
    assert not any(isinstance(cb, MaxNorm) for cb in fold_trainer("baseline", epochs=1).callbacks)


@pytest.mark.slow
def test_cross_validation_is_seeded_and_scores_every_fold() -> None:
    x, y = load_sonar()
    first = cross_validate("input", folds=3, epochs=2, seed=5, data=(x, y))
    again = cross_validate("input", folds=3, epochs=2, seed=5, data=(x, y))
    other = cross_validate("input", folds=3, epochs=2, seed=6, data=(x, y))
    assert first.test_accuracies == again.test_accuracies and first.train_accuracies == again.train_accuracies
    assert first.test_accuracies != other.test_accuracies
    assert len(first.test_accuracies) == 3
    for accuracy in first.test_accuracies:  # a count of correct answers over a fold of 69 or 70
        assert any(abs(accuracy * n / 100 - round(accuracy * n / 100)) < 1e-4 for n in (69, 70))
    assert first.mean == pytest.approx(sum(first.test_accuracies) / 3)
    assert "tutorial 83.52%" in first.format()


@pytest.mark.slow
def test_command_line_with_a_user_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = load_sonar()
    rows = [
        ", ".join(f"{v:.3f}" for v in row.tolist()) + (", M" if label else ", R")
        for row, label in zip(x, y, strict=True)
    ]
    (tmp_path / "s.dat").write_text("\n".join(rows[:60] + rows[-60:]) + "\n")
    results = sonar_mlp.main(
        ["--variant", "baseline", "--folds", "2", "--epochs", "1", "--path", str(tmp_path / "s.dat")]
    )
    assert [r.variant for r in results] == ["baseline"] and len(results[0].test_accuracies) == 2
    assert capsys.readouterr().out.startswith("baseline ")


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"variant must be one of \['baseline', 'hidden', 'input'\], got 'both'"):
        cross_validate("both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"hidden_dropout must be in \[0, 1\], got 1.5"):
        SonarMLP(hidden_dropout=1.5)

"""SequenceModel: shapes, the regularization switch, amplitude-preserving normalization, padding, metrics, errors."""

from __future__ import annotations

import doctest
import math

import lightning.pytorch as pl
import pytest
import torch

import common.model
from common.model import SequenceModel
from sine_lstm import SineDataModule

RATES = dict(
    input_dropout=0.1, dropout=0.3, recurrent_dropout=0.25, weight_dropout=0.2, zoneout=0.1, output_dropout=0.3
)


def rates_of(model: torch.nn.Module) -> dict[str, float]:
    """Every rate of every module that declares ``rate_names``, by ``module.rate``."""
    return {
        f"{name}.{rate}": float(getattr(module, rate))
        for name, module in model.named_modules()
        for rate in getattr(module, "rate_names", ())
    }


def test_doctests() -> None:
    result = doctest.testmod(common.model)
    assert result.attempted > 0, "no doctest ran: the examples are gone"
    assert result.failed == 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_output_shapes(cell: str, bidirectional: bool) -> None:
    x = torch.randn(5, 12, 3)
    forecaster = SequenceModel(input_size=3, horizon=4, cell=cell, hidden_size=8, bidirectional=bidirectional)
    assert forecaster(x).shape == (5, 4, 3)
    classifier = SequenceModel(
        "classify", input_size=3, num_classes=6, cell=cell, hidden_size=8, bidirectional=bidirectional
    )
    assert classifier(x).shape == (5, 6)
    assert classifier(x, torch.tensor([12, 3, 7, 12, 1])).shape == (5, 6)


def test_rates_reach_the_layers() -> None:
    model = SequenceModel(hidden_size=8, **RATES)
    rates = rates_of(model)
    assert rates["rnn.recurrent_dropout"] == 0.25 and rates["rnn.dropout"] == 0.3
    assert rates["rnn.weight_dropout"] == 0.2 and rates["rnn.zoneout"] == 0.1 and rates["rnn.input_dropout"] == 0.1
    assert rates["output_dropout.p"] == 0.3


def test_regularize_false_zeroes_every_rate_and_training_becomes_deterministic() -> None:
    torch.manual_seed(0)
    model = SequenceModel(hidden_size=8, regularize=False, weight_decay=0.1, **RATES)
    assert rates_of(model) and all(v == 0.0 for v in rates_of(model).values())
    assert model.hparams.recurrent_dropout == 0.25  # the given settings are still recorded
    x = torch.randn(4, 10, 1)
    assert torch.equal(model.train()(x), model.eval()(x))
    optimizer = model.configure_optimizers()["optimizer"]
    assert optimizer.param_groups[0]["weight_decay"] == 0.0


def test_regularized_training_is_random_and_eval_is_deterministic() -> None:
    torch.manual_seed(0)
    model = SequenceModel(hidden_size=16, dropout=0.3, recurrent_dropout=0.3, output_dropout=0.3)
    x = torch.randn(8, 10, 1)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_forecasts_follow_the_scale_and_level_of_the_input() -> None:
    # the forecast of a x + b is a f(x) + b: a wave twice as large gets a forecast twice as large
    torch.manual_seed(0)
    model = SequenceModel(horizon=5, hidden_size=8).eval()
    x = torch.randn(6, 20, 1)
    with torch.no_grad():
        base, scaled = model(x), model(3.0 * x + 2.0)
    torch.testing.assert_close(scaled, 3.0 * base + 2.0, rtol=1e-4, atol=1e-4)


def test_without_normalize_the_input_is_used_as_is() -> None:
    torch.manual_seed(0)
    model = SequenceModel(horizon=2, hidden_size=8, normalize=False).eval()
    x = torch.randn(3, 10, 1)
    with torch.no_grad():
        direct = model.head(model.rnn(x)[0][:, -1]).view(3, 2, 1)
        torch.testing.assert_close(model(x), direct)


def test_normalize_both_adds_each_cases_standardized_channels() -> None:
    torch.manual_seed(0)
    model = SequenceModel(task="classify", input_size=3, num_classes=4, hidden_size=8, fcn=True, fcn_channels=4,
                          normalize="both").eval()  # fmt: skip
    assert model.rnn.input_size == 6 and model.conv is not None and model.conv[0][0].in_channels == 6
    x, lengths = torch.randn(5, 12, 3), torch.tensor([12, 9, 12, 4, 7])
    x = x * (torch.arange(12) < lengths.unsqueeze(1)).unsqueeze(2)  # zero padding, as the loader gives it
    seen: list[torch.Tensor] = []
    model.rnn.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.no_grad():
        model(x, lengths)
    # through the packed input: the first 3 channels are the case as given, the last 3 its standardized copy
    packed = seen[0]
    rows = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True, total_length=12)[0]
    for case, length in enumerate(lengths.tolist()):
        given, standardized = rows[case, :length, :3], rows[case, :length, 3:]
        torch.testing.assert_close(given, x[case, :length])
        expected = (given - given.mean(0)) / given.std(0, unbiased=False).clamp_min(1e-5)
        torch.testing.assert_close(standardized, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"normalize must be true, false or 'both' \(classification only\), "
                                         r"got 'both' for task='forecast'"):  # fmt: skip
        SequenceModel(normalize="both")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batches_give_the_same_logits_as_single_sequences(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    model = SequenceModel(
        "classify", input_size=2, num_classes=3, cell=cell, hidden_size=8, bidirectional=bidirectional
    ).eval()
    sequences = [torch.randn(n, 2) for n in (7, 3, 5)]
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
    with torch.no_grad():
        batched = model(padded, torch.tensor([7, 3, 5]))
        alone = torch.cat([model(s.unsqueeze(0)) for s in sequences])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_training_step_gives_gradients_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = SequenceModel(horizon=3, hidden_size=8, **RATES)
    loss = model.training_step((torch.randn(4, 10, 1), torch.randn(4, 3, 1)), 0)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_test_metrics_match_a_direct_computation(tmp_path) -> None:
    torch.manual_seed(0)
    dm = SineDataModule(num_series=10, length=40, input_length=12, horizon=4, stride=4, batch_size=5)
    model = SequenceModel(horizon=4, hidden_size=8)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.test(model, datamodule=dm, verbose=False)
    x, y = dm.windows("test").tensors
    with torch.no_grad():
        prediction = model.eval()(x)
    level = x.mean(dim=1, keepdim=True)
    expected_ratio = math.sqrt(float((prediction - level).pow(2).sum() / (y - level).pow(2).sum()))
    metrics = trainer.callback_metrics
    assert float(metrics["test_rmse"]) == pytest.approx(float((prediction - y).pow(2).mean().sqrt()), rel=1e-5)
    assert float(metrics["test_mae"]) == pytest.approx(float((prediction - y).abs().mean()), rel=1e-5)
    assert float(metrics["test_amplitude_ratio"]) == pytest.approx(expected_ratio, rel=1e-5)


def test_extra_repr_names_the_settings() -> None:
    text = repr(SequenceModel(hidden_size=8, regularize=False, recurrent_dropout=0.4))
    assert "task='forecast', regularize=False" in text and "recurrent_dropout=0.4" in text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"recurrent_dropout": 1.5}, ValueError, r"recurrent_dropout must be in \[0, 1\], got 1.5"),
        ({"output_dropout": -0.1}, ValueError, r"output_dropout must be in \[0, 1\], got -0.1"),
        ({"hidden_size": 0}, ValueError, r"hidden_size must be an int >= 1, got 0"),
        ({"num_classes": 1}, ValueError, r"num_classes must be an int >= 2, got 1"),
        ({"task": "regress"}, ValueError, r"task must be 'forecast' or 'classify', got 'regress'"),
        ({"cell": "rnn"}, ValueError, r"cell must be 'lstm' or 'gru', got 'rnn'"),
        ({"lr": 0.0}, ValueError, r"lr must be a finite number > 0, got 0.0"),
        ({"weight_decay": -1.0}, ValueError, r"weight_decay must be a finite number >= 0, got -1.0"),
        ({"dropout": "0.2"}, TypeError, r"dropout must be a float in \[0, 1\], got str '0.2'"),
        ({"difference": -1}, ValueError, r"difference must be an int >= 0 \(0: off\), got -1"),
        ({"difference": True}, ValueError, r"difference must be an int >= 0 \(0: off\), got True"),
        ({"difference": 2, "task": "classify"}, ValueError, r"difference needs task='forecast'.*got task='classify'"),
    ],
)
def test_argument_errors(kwargs: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        SequenceModel(**kwargs)


def test_with_difference_the_network_forecasts_the_change_from_lag_steps_before() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 10, 2).cumsum(dim=1) + 50.0
    plain = SequenceModel(input_size=2, horizon=1, hidden_size=8).eval()
    lagged = SequenceModel(input_size=2, horizon=1, hidden_size=8, difference=3).eval()
    lagged.load_state_dict(plain.state_dict())  # the same parameters: differencing adds none
    changes = x[:, 3:] - x[:, :-3]
    # the network reads the lag-3 differences (standardized as usual) and its forecast adds to x[t+1-3]
    expected = plain(changes) + x[:, -3:-2]
    torch.testing.assert_close(lagged(x), expected)


def test_differenced_forecasts_past_the_lag_build_on_earlier_forecasts() -> None:
    x = torch.arange(8.0).view(1, 8, 1) ** 2
    model = SequenceModel(horizon=5, hidden_size=4, difference=2, normalize=False).eval()
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.constant_(model.head.bias, 1.0)  # every forecast change is 1
    # steps 8, 9 add 1 to the last observed x[6], x[7]; steps 10..12 add 1 to the forecasts two steps before
    assert model(x).flatten().tolist() == [37.0, 50.0, 38.0, 51.0, 39.0]


def test_difference_needs_a_window_longer_than_the_lag() -> None:
    with pytest.raises(ValueError, match=r"difference=6 needs input windows longer than 6 steps, got 6"):
        SequenceModel(hidden_size=4, difference=6)(torch.randn(2, 6, 1))


def test_input_shape_error() -> None:
    with pytest.raises(ValueError, match=r"SequenceModel: input must be \(N, L, C\), got shape \(4, 10\)"):
        SequenceModel(hidden_size=4)(torch.randn(4, 10))


def test_rates_take_the_librarys_range_including_1() -> None:
    # the library's rates are in [0, 1]; the recipes' flags take the same range
    model = SequenceModel(
        horizon=2, hidden_size=4, num_layers=2, dropout=1.0, recurrent_dropout=1.0, output_dropout=1.0
    )
    assert model(torch.randn(2, 5, 1)).shape == (2, 2, 1)


def test_fcn_branch_adds_convolutional_features_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = SequenceModel(task="classify", num_classes=3, input_size=2, hidden_size=8, fcn=True, fcn_channels=4)
    assert model.head.in_features == 8 + 4 and isinstance(model.conv, torch.nn.ModuleList)
    model.eval()
    x = torch.randn(2, 6, 2)
    lengths = torch.tensor([6, 4])
    padded = x.clone()
    padded[1, 4:] = 0.0
    out = model(padded, lengths)
    # the second sequence alone, unpadded, gives the same logits: the padding does not reach the features
    alone = model(x[1:2, :4], torch.tensor([4]))
    assert torch.allclose(out[1:2], alone, atol=1e-5)
    assert SequenceModel(hidden_size=8).conv is None
    assert "spatial_dropout=0.1" in repr(model) and "arm='all'" in repr(model)


def test_plateau_schedule_and_its_errors() -> None:
    config = SequenceModel(hidden_size=8).configure_optimizers()
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert config["lr_scheduler"]["monitor"] == "val_loss"
    assert isinstance(SequenceModel(hidden_size=8, lr_schedule="none").configure_optimizers(), torch.optim.AdamW)
    with pytest.raises(ValueError, match="lr_schedule must be 'plateau' or 'none', got 'cosine'"):
        SequenceModel(lr_schedule="cosine")  # type: ignore[arg-type]


def test_a_flat_test_part_is_tested_without_an_amplitude_ratio(tmp_path) -> None:
    # every target equals its window's level: the ratio has no denominator, so it is left out instead of crashing
    class Flat(SineDataModule):
        def load_series(self) -> list[torch.Tensor]:
            return [torch.full((40,), 7.0) for _ in range(10)]

    dm = Flat(num_series=10, length=40, input_length=12, horizon=4, stride=4, batch_size=5)
    trainer = pl.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1)  # fmt: skip
    trainer.test(SequenceModel(horizon=4, hidden_size=8), datamodule=dm, verbose=False)
    assert "test_rmse" in trainer.callback_metrics and "test_amplitude_ratio" not in trainer.callback_metrics

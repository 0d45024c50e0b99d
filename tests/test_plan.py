"""The training plan (--budget → widths, kimg, threads), native-size output, LeCam and the fit's diversity check."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import TINY, assert_user_error, make_folder, make_run, run_cli
from PIL import Image

import gansynth
from gansynth.config import Config
from gansynth.errors import ConfigError
from gansynth.train import plan as plan_module
from gansynth.train.plan import choose, needed_kimg, parse_budget, plan_fit


@pytest.mark.parametrize(
    ("text", "expected"), [("20m", 1200), ("2h", 7200), ("1h30m", 5400), ("90s", 90), ("15", 900), (2, 120)]
)
def test_budget_durations(text, expected):
    assert parse_budget(text) == expected  # in s


@pytest.mark.parametrize("text", ["soon", "20 minutes", "5s", "-3m", "40d", "1e9", "m20", ""])
def test_bad_budgets_are_refused(text):
    with pytest.raises(ConfigError):
        parse_budget(text)


class _FakeData:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _speeds(width_speed: dict[int, float], seen: list[int]):
    def measure(config: Config) -> float:
        seen.append(config.model.g_width)
        return width_speed[config.model.g_width]

    return measure


def test_the_widest_width_that_reaches_the_length_within_the_budget_is_chosen():
    # 3 000 images want 150 kimg; a 1 000 s budget holds 150 kimg at >= 160 img/s (6% overhead)
    speeds = {16: 900.0, 24: 600.0, 32: 400.0, 48: 200.0, 64: 100.0, 96: 50.0}
    seen: list[int] = []
    planned, measured = choose(Config(), _FakeData(3000), 1000.0, _speeds(speeds, seen), False, clock=lambda: 0.0)
    assert needed_kimg(3000) == 150.0
    assert planned.model.g_width == planned.model.d_width == 48
    assert seen == [16, 24, 32, 48, 64]  # stops at the first width too slow for the budget
    assert planned.train.kimg == pytest.approx(200.0 * 940 / 1000, abs=0.1)
    assert planned.plan.source == "budget" and planned.plan.expected_s <= 1000.0 + 1e-6
    assert measured == {w: speeds[w] for w in seen}


def test_a_budget_too_small_for_any_width_takes_the_narrowest_and_fills_the_time():
    seen: list[int] = []
    planned, _ = choose(Config(), _FakeData(3000), 60.0, _speeds({16: 100.0, 24: 50.0}, seen), False, lambda: 0.0)
    assert seen == [16] and planned.model.g_width == 16
    assert planned.train.kimg == pytest.approx(100.0 * 60 * 0.94 / 1000, abs=0.1)


def test_a_large_budget_is_capped_at_the_longest_plan():
    planned, _ = choose(Config(), _FakeData(3000), 1e6, _speeds({w: 5000.0 for w in range(1, 300)}, []), False)
    assert planned.model.g_width == plan_module.WIDTH_LADDER[-1] and planned.train.kimg == plan_module.MAX_KIMG


def test_given_widths_are_kept_and_only_the_length_is_planned():
    seen: list[int] = []
    base = Config.from_dict({"model": {"g_width": 40, "d_width": 20}})
    planned, _ = choose(base, _FakeData(500), 300.0, _speeds({40: 700.0}, seen), True, lambda: 0.0)
    assert seen == [40] and (planned.model.g_width, planned.model.d_width) == (40, 20)


def test_an_explicit_length_never_calibrates(monkeypatch):
    from gansynth.runtime import cpu_runtime

    monkeypatch.setattr(plan_module, "measure_throughput", lambda *a, **k: pytest.fail("calibrated"))
    lines: list[str] = []
    config = Config.from_dict({"train": {"kimg": 3.0}})
    planned, _ = plan_fit(config, _FakeData(10), cpu_runtime(), None, {"train.kimg"}, lines.append)
    assert planned.train.kimg == 3.0 and planned.plan.source == "given" and "as given" in lines[0]
    with pytest.raises(ConfigError, match="both given"):
        plan_fit(config, _FakeData(10), cpu_runtime(), "5m", {"train.kimg"})


def test_a_budget_too_small_for_the_data_resolution_plans_one_size_down(monkeypatch):
    """3 000 images at 32 px want 150 kimg; a 10-minute budget at 200 img/s holds ~113: the plan moves to 16 px,
    where the calibrated 800 img/s reaches the length; without a reloader (--resolution) it stays at 32 px."""
    from gansynth.runtime import cpu_runtime

    class Data(_FakeData):
        def __init__(self, resolution: int) -> None:
            super().__init__(3000)
            self.resolution = resolution

    speed = {32: 200.0, 16: 800.0}
    monkeypatch.setattr(plan_module, "measure_throughput", lambda c, d, r: speed[d.resolution])
    lines: list[str] = []
    config = Config.from_dict({"data": {"resolution": 32}})
    planned, data = plan_fit(config, Data(32), cpu_runtime(), "10m", set(), lines.append, reload=Data)
    assert data.resolution == 16 and planned.data.resolution == 16
    assert planned.train.kimg >= needed_kimg(3000) and planned.model.g_width > 16
    assert any("planning at 16 px instead" in line for line in lines)
    kept, data = plan_fit(config, Data(32), cpu_runtime(), "10m", set(), lines.append, reload=None)
    assert data.resolution == 32 and kept.data.resolution == 32 and kept.train.kimg < needed_kimg(3000)


def test_fit_on_a_budget_writes_its_plan_and_resume_keeps_it(tmp_path, monkeypatch, capsys):
    data = make_folder(tmp_path / "data", {"a": 4, "b": 4}, size=16)
    run = tmp_path / "run"
    # a pessimistic calibration: the plan (~0.5 kimg) ends long before the deadline, however busy the machine is
    monkeypatch.setattr(plan_module, "measure_throughput", lambda *a, **k: 50.0)
    code, _, err = run_cli(["fit", data, "--out", run, "--budget", "12s", "--snapshot-kimg", "1000", *TINY], capsys)
    assert code == 0, err
    assert "calibration (cpu, 16 px" in err and "plan: width" in err
    config = json.loads((run / "config.json").read_text())
    assert config["plan"]["source"] == "budget" and config["plan"]["budget_s"] == 12.0
    assert config["plan"]["img_per_s"] > 0 and config["plan"]["threads"] >= 1
    assert config["model"]["g_width"] == 32 and config["model"]["d_width"] == 16  # TINY sets them: kept
    state = json.loads((run / "train_state.json").read_text())
    assert state["kimg"] >= config["train"]["kimg"]
    monkeypatch.setattr(plan_module, "measure_throughput", lambda *a, **k: pytest.fail("calibrated on resume"))
    longer = gansynth.fit(data, out=run, resume=True, progress=False, overrides=[f"train.kimg={state['kimg'] + 0.1}"])
    assert longer.status == "done"
    assert json.loads((run / "config.json").read_text())["plan"] == config["plan"]
    assert_user_error(["fit", data, "--out", run, "--resume", "--budget", "1m"], capsys, "--budget")
    assert_user_error(["fit", data, "--out", tmp_path / "r2", "--budget", "1m", "--kimg", "3"], capsys, "both given")


# --- native size ------------------------------------------------------------------------------------------------


def test_a_28px_folder_trains_at_32px_and_records_its_native_size(tmp_path):
    data = make_folder(tmp_path / "data", {"a": 3, "b": 3}, size=28, mode="L")
    dataset = gansynth.load_dataset(data)
    assert dataset.resolution == 32 and dataset.native_size == 28 and dataset.info()["native_size"] == 28
    Image.new("L", (40, 30)).save(data / "a" / "odd.png")
    mixed = gansynth.load_dataset(data)
    assert mixed.native_size is None and mixed.resolution == 32


def _native_run(tmp_path, native: int):
    run = make_run(tmp_path / "run", ["a", "b"], resolution=32)
    info = json.loads((run / "dataset.json").read_text())
    (run / "dataset.json").write_text(json.dumps({**info, "native_size": native}))
    return run


def test_sample_export_and_synthetic_dataset_write_the_native_size(tmp_path, capsys):
    from gansynth.images import resize
    from gansynth.sampler import load_sampler

    run = _native_run(tmp_path, 28)
    sampler = load_sampler(run)
    trained = sampler.generate(1, 3, seed=5, size=32)
    native = sampler.generate(1, 3, seed=5)
    assert trained.shape[-1] == 32 and native.shape[-1] == 28
    assert torch.equal(native, resize(trained, 28))
    assert sampler.generate(1, 2, size=20).shape[-2:] == (20, 20)
    code, _, err = run_cli(["export", run, "--per-class", "3", "--out", tmp_path / "exp", "--quiet"], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    assert manifest["resolution"] == 28 and manifest["trained_resolution"] == 32
    file = sorted((tmp_path / "exp" / "images" / "b").glob("*.png"))[0]
    assert Image.open(file).size == (28, 28)
    seed = int(file.stem.rsplit("-", 1)[1])
    assert torch.equal(torch.from_numpy(np.array(Image.open(file)))[None], sampler.generate(1, 1, seed)[0])
    synthetic = gansynth.SyntheticDataset(run, per_class=2)
    assert synthetic.image(0).shape[-1] == 28
    assert gansynth.SyntheticDataset(run, per_class=2, size=32).image(0).shape[-1] == 32
    code, _, err = run_cli(["export", run, "--per-class", "2", "--out", tmp_path / "e32", "--size", "32"], capsys)
    assert code == 0 and json.loads((tmp_path / "e32" / "manifest.json").read_text())["resolution"] == 32
    code, _, err = run_cli(["sample", run, "--class", "a", "-n", "4", "--out", tmp_path / "g.png"], capsys)
    assert code == 0 and Image.open(tmp_path / "g.png").size == (56, 56)
    assert_user_error(["sample", run, "--class", "a", "--size", "0", "--out", tmp_path / "x.png"], capsys, "size")


# --- LeCam and diversity ----------------------------------------------------------------------------------------


def test_lecam_pulls_real_and_fake_outputs_toward_each_others_anchor():
    from gansynth.train.steps import lecam_penalty

    anchors = torch.zeros(2)
    d_real, d_fake = torch.full((4,), 2.0), torch.full((4,), -1.0)
    value = lecam_penalty(d_real, d_fake, anchors, decay=0.5)
    assert torch.allclose(anchors, torch.tensor([1.0, -0.5]))  # the EMA moved halfway
    assert value.item() == pytest.approx((2.0 + 0.5) ** 2 + (-1.0 - 1.0) ** 2)
    lecam_penalty(torch.tensor([float("nan")]), d_fake, anchors, 0.5)
    assert torch.isfinite(anchors).all()  # a non-finite batch leaves the anchors alone


def test_lecam_and_mode_seeking_train_and_resume_exactly(tmp_path):
    data = make_folder(tmp_path / "data", {"a": 4, "b": 4})
    lecam = ["train.lecam_weight=0.3", "train.ms_weight=0.5"]  # both regularizers in the loop
    common = dict(progress=False, overrides=[*_tiny_overrides(), *lecam])
    gansynth.fit(data, out=tmp_path / "whole", kimg=0.064, **common)
    gansynth.fit(data, out=tmp_path / "split", kimg=0.032, **common)
    gansynth.fit(data, out=tmp_path / "split", kimg=0.064, resume=True, **common)
    from safetensors.torch import load_file

    a, b = (load_file(tmp_path / r / "generator.safetensors") for r in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(x) for x in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert all(abs(r["loss_d"]) < 1e6 for r in log)


def _tiny_overrides() -> list[str]:
    return [TINY[i + 1] for i in range(0, len(TINY), 2) if TINY[i] == "--set"] + ["train.batch_size=16"]


class _Collapsed(torch.nn.Module):
    def forward(self, z, y):
        return torch.zeros(z.shape[0], 1, 16, 16) + 0.01 * z[:, :1, None, None]


class _Copier(torch.nn.Module):
    """Returns real images of the class at random: as diverse as the data."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.dataset = dataset

    def forward(self, z, y):
        from gansynth.images import to_float

        out = []
        for label, row in zip(y.tolist(), z):
            idx = (self.dataset.labels == label).nonzero().flatten()
            out.append(to_float(self.dataset.images[idx[int(row[0].abs() * 1000) % idx.numel()]]))
        return torch.stack(out)


def test_the_diversity_check_names_a_collapsed_class_and_passes_a_varied_one(tmp_path):
    from gansynth.train.diversity import describe, diversity_ratios, low_diversity

    dataset = gansynth.load_dataset(make_folder(tmp_path / "data", {"cat": 12, "dog": 12}, mode="L"))
    collapsed = diversity_ratios(_Collapsed(), dataset, z_dim=4, device=torch.device("cpu"))
    varied = diversity_ratios(_Copier(dataset), dataset, z_dim=4, device=torch.device("cpu"))
    assert set(low_diversity(collapsed)) == {"cat", "dog"} and all(r < 0.1 for r in collapsed.values())
    assert low_diversity(varied) == {} and all(r > 0.7 for r in varied.values())
    assert "cat (0.0" in describe(low_diversity(collapsed), 2)


def test_group_spectral_penalty_is_the_largest_singular_value_of_each_grouped_vector():
    from gansynth.train.steps import group_spectral_penalty

    rank_one = torch.ones(1, 16)  # [4, 4] matrix of ones: σ_max = 4
    spread = torch.eye(4).reshape(1, 16)  # the identity: σ_max = 1
    assert group_spectral_penalty([rank_one]).item() == pytest.approx(4.0)
    assert group_spectral_penalty([spread]).item() == pytest.approx(1.0)
    assert group_spectral_penalty([rank_one, spread]).item() == pytest.approx(5.0)


def test_gsr_shrinks_the_class_conditional_gains_of_a_trained_biggan(tmp_path):
    from gansynth.sampler import load_sampler
    from gansynth.train.steps import group_spectral_penalty

    data = make_folder(tmp_path / "data", {"a": 6, "b": 6, "c": 6}, mode="L")
    base = ["model.g_width=16", "model.d_width=16", "model.z_dim=8", "model.embed_dim=8", "train.batch_size=16"]
    norms = {}
    for weight in (0.0, 5.0):
        run = tmp_path / f"gsr{weight}"
        gansynth.fit(data, out=run, kimg=0.8, overrides=[*base, f"train.gsr_weight={weight}"], progress=False)
        generator = load_sampler(run).generator
        with torch.no_grad():
            norms[weight] = group_spectral_penalty(generator.class_affines(torch.arange(3))).item()
    assert norms[5.0] < 0.5 * norms[0.0], norms


def test_threads_follow_the_free_cores_unless_fixed(monkeypatch):
    from gansynth.runtime import cpu_runtime
    from gansynth.train.plan import choose_threads, free_cores

    assert 1 <= free_cores(0.05) <= len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("GANSYNTH_THREADS")
        monkeypatch.setattr(plan_module, "free_cores", lambda: 1)
        assert choose_threads(cpu_runtime()) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("GANSYNTH_THREADS", "2")
        assert choose_threads(cpu_runtime()) == 2
        monkeypatch.setenv("GANSYNTH_THREADS", "many")
        with pytest.raises(ConfigError, match="GANSYNTH_THREADS"):
            choose_threads(cpu_runtime())
    finally:
        torch.set_num_threads(before)


def test_mode_seeking_penalizes_a_generator_that_ignores_its_noise():
    from gansynth.train.steps import mode_seeking_penalty

    z = torch.randn(8, 4)
    same = torch.ones(4, 1, 8, 8)
    varied = torch.randn(8, 1, 8, 8)
    ignores = mode_seeking_penalty(same, same.clone(), z, 4)
    follows = mode_seeking_penalty(varied[:4], varied[4:], z, 4)
    assert ignores.item() > 1000 * follows.item()


def test_mode_seeking_gradients_make_a_noise_ignoring_generator_use_its_noise():
    from gansynth.train.steps import mode_seeking_penalty

    torch.manual_seed(0)
    generator = torch.nn.Linear(4, 16)  # image = W z + b; W ≈ 0: the noise is (almost) ignored
    torch.nn.init.normal_(generator.weight, std=1e-3)
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    z = torch.randn(16, 4)
    before = generator(z).std(0).mean().item()
    for _ in range(50):
        images = generator(z)
        loss = mode_seeking_penalty(images[:8], images[8:], z, 8)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert generator(z).std(0).mean().item() > 20 * before


def test_a_budget_plan_stops_at_its_deadline_when_the_machine_gets_slower(tmp_path, monkeypatch, capsys):
    data = make_folder(tmp_path / "data", {"a": 4, "b": 4})
    monkeypatch.setattr(plan_module, "measure_throughput", lambda *a, **k: 1e6)  # calibrated far too optimistic
    run = tmp_path / "run"
    code, _, err = run_cli(["fit", data, "--out", run, "--budget", "10s", "--snapshot-kimg", "1000", *TINY], capsys)
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    state = json.loads((run / "train_state.json").read_text())
    assert config["train"]["kimg"] == plan_module.MAX_KIMG and 0 < state["kimg"] < config["train"]["kimg"]
    assert "budget ran out" in err and "--resume" in err


def test_calibration_times_the_real_training_step(tmp_path):
    from gansynth.runtime import cpu_runtime
    from gansynth.train.plan import measure_throughput

    dataset = gansynth.load_dataset(make_folder(tmp_path / "data", {"a": 4, "b": 4}, mode="L"))
    config = Config.from_dict(
        {
            "model": {"arch": "dcgan", "g_width": 16, "d_width": 16, "z_dim": 8, "embed_dim": 8},
            "train": {"batch_size": 8},
        }
    )
    from gansynth.train.fit import _resolve

    rate = measure_throughput(_resolve(config, dataset), dataset, cpu_runtime(), seconds=0.3)
    assert rate > 0  # images per second: a calibration ran, whatever the machine's speed

"""CLI: every user error of `gansynth fit`/`sample` exits 2 with error:/hint: and no traceback, writing nothing."""

import json

import pytest
from conftest import TINY, assert_user_error, make_folder, run_cli
from PIL import Image


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "imgs", {"a": 4, "b": 4})


def test_missing_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_user_error(["fit", tmp_path / "nope"], capsys, "does not exist")
    assert not (tmp_path / "runs").exists()


def test_path_is_a_file(tmp_path, capsys):
    (tmp_path / "f.png").write_bytes(b"x")
    assert_user_error(["fit", tmp_path / "f.png"], capsys, "is a file")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert_user_error(["fit", tmp_path / "empty"], capsys, "empty")


def test_loose_images_only(tmp_path, capsys):
    (tmp_path / "loose").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "loose" / "a.png")
    err = assert_user_error(["fit", tmp_path / "loose"], capsys, "no class subfolders")
    assert "hint:" in err


def test_class_without_readable_image_and_all_corrupt(tmp_path, capsys):
    root = make_folder(tmp_path / "d", {"good": 2})
    (root / "bad").mkdir()
    (root / "bad" / "x.jpg").write_bytes(b"not an image")
    assert_user_error(["fit", root], capsys, "bad has 0 readable images")
    (tmp_path / "allbad" / "c").mkdir(parents=True)
    (tmp_path / "allbad" / "c" / "x.png").write_bytes(b"junk")
    assert_user_error(["fit", tmp_path / "allbad"], capsys, "readable")


@pytest.mark.parametrize(
    "flag, value, fragment, choices",
    [
        ("--arch", "bigan", "did you mean 'biggan'", "choices: biggan, dcgan, mlp"),
        ("--loss", "hinj", "did you mean 'hinge'", "choices: hinge, minimax, nonsaturating, wgan-gp"),
        ("--conditioning", "projektion", "did you mean 'projection'", "choices: acgan, concat, projection"),
    ],
)
def test_unknown_registered_names(folder, capsys, flag, value, fragment, choices, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = assert_user_error(["fit", folder, flag, value], capsys, fragment)
    assert choices in err.replace("\n", " "), err
    assert not (tmp_path / "runs").exists()


def test_attention_no_stage_has_fails_before_writing(folder, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = assert_user_error(["fit", folder, "--resolution", "16", "--set", "model.attention=16"], capsys, "attention")
    assert "from 8 to 8" in err and not (tmp_path / "runs").exists()


def test_unknown_set_key_and_out_of_range(folder, capsys):
    assert_user_error(["fit", folder, "--set", "train.lrr=1"], capsys, "unknown config key train.lrr")
    assert_user_error(["fit", folder, "--kimg", "0"], capsys, "--kimg")
    assert_user_error(["fit", folder, "--resolution", "48"], capsys, "data.resolution = 48")


def test_out_is_a_file(folder, tmp_path, capsys):
    (tmp_path / "run.txt").write_text("x")
    assert_user_error(["fit", folder, "--out", tmp_path / "run.txt"], capsys, "is a file")


def test_resume_without_a_run_or_with_other_data(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_user_error(["fit", folder, "--resume"], capsys, "no run of 'imgs'")
    code, _, err = run_cli(["fit", folder, "--out", tmp_path / "r", "--kimg", "0.032", *TINY], capsys)
    assert code == 0, err
    other = make_folder(tmp_path / "other", {"a": 3, "b": 5}, seed=3)
    assert_user_error(["fit", other, "--out", tmp_path / "r", "--resume", *TINY], capsys, "different data")


def test_truncated_checkpoint(folder, tmp_path, capsys):
    run = tmp_path / "r"
    code, _, err = run_cli(["fit", folder, "--out", run, "--kimg", "0.032", *TINY], capsys)
    assert code == 0, err
    data = (run / "generator.safetensors").read_bytes()
    (run / "generator.safetensors").write_bytes(data[: len(data) // 2])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert_user_error(["fit", folder, "--out", run, "--resume", "--kimg", "0.064", *TINY], capsys, "generator")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing was rewritten
    ema = (run / "generator_ema.safetensors").read_bytes()
    (run / "generator_ema.safetensors").write_bytes(ema[:100])
    assert_user_error(["sample", run, "--class", "a", "--out", tmp_path / "g.png"], capsys, "sha256")


def test_fit_then_sample_a_grid(folder, tmp_path, capsys):
    run = tmp_path / "r"
    code, _, err = run_cli(["fit", folder, "--out", run, "--kimg", "0.032", *TINY], capsys)
    assert code == 0, err
    assert "2 classes" in err and "16 px" in err
    config = json.loads((run / "config.json").read_text())
    assert config["schema_version"] == 1 and config["data"]["resolution"] == 16
    code, out, err = run_cli(["sample", run, "--class", "b", "-n", "6", "--out", tmp_path / "g.png"], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "g.png").size == (3 * 16, 2 * 16)
    assert_user_error(["sample", run, "--class", "zebra"], capsys, "unknown class 'zebra'")
    assert_user_error(["sample", tmp_path / "nope", "--class", "a"], capsys, "does not exist")


def test_messy_folder_trains_and_reports_skips(tmp_path, capsys):
    from conftest import messy_folder

    root = messy_folder(tmp_path / "messy")
    code, _, err = run_cli(
        ["fit", root, "--out", tmp_path / "r", "--kimg", "0.032", "--resolution", "16", *TINY], capsys
    )
    assert code == 0, err
    assert "skipped 5 files" in err and "cat/garbage.jpg" in err
    assert (tmp_path / "r" / "generator_ema.safetensors").exists()


def test_one_class_folder_trains_unconditionally_with_a_notice(tmp_path, capsys):
    root = make_folder(tmp_path / "solo", {"only": 5})
    code, _, err = run_cli(["fit", root, "--out", tmp_path / "r", "--kimg", "0.032", *TINY], capsys)
    assert code == 0, err
    assert "one class folder" in err
    assert json.loads((tmp_path / "r" / "dataset.json").read_text())["class_names"] == ["only"]


def test_default_run_names_get_a_fresh_suffix(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, _, err = run_cli(["fit", folder, "--kimg", "0.016", *TINY], capsys)
        assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["imgs", "imgs-2"]

from tiedtransformer.run.label import distinct_labels, flat, run_label, wandb_run_name


def test_a_run_is_named_by_direction_tying_and_seed():
    assert run_label("en-de", "three_way", 2) == "en-de · three_way · seed 2"
    assert wandb_run_name("en-de", "three_way", 2) == "en-de-three_way-s2"
    # an unknown seed (seed_everything true or unset) is left out, not written as "True" or "None"
    assert run_label("de-en", "none", True) == wandb_run_name("de-en", "none", None).replace("-none", " · none")
    assert run_label(None, None, None) == wandb_run_name(None, None) == "run"


def test_runs_that_share_a_label_get_the_settings_in_which_they_differ():
    labels = {"a1": "en-de · none · seed 1", "b2": "en-de · none · seed 1", "c3": "en-de · decoder · seed 1"}
    settings = {
        "a1": {"model.lr": 0.001, "data.max_tokens": 4096},
        "b2": {"model.lr": 0.002, "data.max_tokens": 4096},
        "c3": {"model.lr": 0.001, "data.max_tokens": 4096},
    }
    out = distinct_labels(labels, settings)
    assert out == {
        "a1": "en-de · none · seed 1 · lr=0.001",
        "b2": "en-de · none · seed 1 · lr=0.002",
        "c3": "en-de · decoder · seed 1",  # unique already: unchanged
    }


def test_runs_that_differ_in_nothing_are_told_apart_by_their_directories():
    labels = {"sweep-1a2b": "en-de · none", "sweep-3c4d": "en-de · none"}
    out = distinct_labels(labels, {"sweep-1a2b": {"x": 1}, "sweep-3c4d": {"x": 1}})
    assert out == {"sweep-1a2b": "en-de · none · sweep-1a2b", "sweep-3c4d": "en-de · none · sweep-3c4d"}
    assert len(set(out.values())) == 2


def test_flat_spells_nested_options_as_on_the_command_line():
    assert flat({"model": {"net": {"tying": "none"}}, "seed_everything": 3}) == {
        "model.net.tying": "none",
        "seed_everything": 3,
    }

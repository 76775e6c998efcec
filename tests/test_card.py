"""tiedtransformer.export.card: the model card of an export, from the run's own files."""

from pathlib import Path

import yaml

from tests.conftest import tiny_model
from tiedtransformer.export.card import model_card
from tiedtransformer.export.source import Exportable
from tiedtransformer.run.summary import FitSummary

SIGNATURES = {
    "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "chrf_signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
}


def exportable(data: dict, **summary) -> Exportable:
    net = tiny_model(tying="three_way")
    return Exportable(
        net=net,
        tokens={},
        models={},
        direction="en-de",
        checkpoint=Path("run/checkpoints/last.ckpt"),
        summary=FitSummary(**summary),
        config_text=yaml.safe_dump({"data": data}),
    )


def test_the_card_holds_metadata_scores_with_their_signatures_outside_the_table_and_the_data():
    src = exportable(
        {"source": "demo", "demo_train_size": 30000, "direction": "en-de"},
        version="0.9.0",
        final_test_bleu=12.5,
        final_test_bleu_ci=1.5,
        final_test_chrf=40.25,
        final_test_chrf_ci=0.75,
        **SIGNATURES,
    )
    card = model_card(src, "hf")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert (
        meta["language"] == ["en", "de"] and "tying-three_way" in meta["tags"] and meta["metrics"] == ["bleu", "chrf"]
    )
    assert "license" not in meta  # left to the user
    table = [line for line in card.splitlines() if line.startswith("| test |")]
    assert table == ["| test | bleu | 12.50 | 1.50 |", "| test | chrf | 40.25 | 0.75 |"]
    for line in card.splitlines():  # every table row has as many cells as the header
        if line.startswith("|"):
            assert line.count("|") == 5, line
    assert (
        f"- bleu: `{SIGNATURES['sacrebleu_signature']}`" in card and f"- chrf: `{SIGNATURES['chrf_signature']}`" in card
    )
    assert "the generated demo corpus (30000 pairs an epoch), direction en-de" in card
    assert "Trained with tiedtransformer 0.9.0" in card


def test_the_card_names_hub_and_file_data_and_does_not_invent_a_training_version():
    hub = model_card(exportable({"source": "hub", "hub_dataset": "wmt/wmt14", "hub_config": "de-en"}), "ctranslate2")
    assert "the Hugging Face dataset `wmt/wmt14` (`de-en`)" in hub and "Trained with" not in hub
    files = model_card(exportable({"source": "files", "train_path": "data/train", "direction": "de-en"}), "hf")
    assert "local files `data/train`, direction de-en" in files
    bare = model_card(exportable({"source": "demo"}), "hf")  # settings the config lacks are left out
    assert "- Data: the generated demo corpus, direction en-de." in bare and "None" not in bare


def test_every_tying_mode_is_described_from_the_networks_own_ties():
    import dataclasses

    from tiedtransformer.export.card import what_is_tied
    from tiedtransformer.model.network import TYING_MODES

    said = {}
    for tying in TYING_MODES:
        net = tiny_model(tying=tying)
        src = dataclasses.replace(exportable({"source": "demo"}), net=net)
        said[tying] = what_is_tied(net.tied_with())
        assert f"- Tying: `{tying}`: {said[tying]}." in model_card(src, "hf")
    assert said["none"] == "no token matrices are shared"
    assert said["decoder"] == "the decoder's input embedding and the output (pre-softmax) matrix are one matrix"
    assert said["src_tgt"] == "the encoder's input embedding and the decoder's input embedding are one matrix"
    assert said["three_way"] == (
        "the encoder's input embedding, the decoder's input embedding and the output (pre-softmax) matrix are one matrix"
    )

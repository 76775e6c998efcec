"""tiedtransformer export: every tying mode x {post-norm, pre-norm}, loaded back in a fresh process, offline."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import tiny_model
from tiedtransformer.cli import main
from tiedtransformer.data.vocab import Vocabulary, _train_one
from tiedtransformer.export.ct2 import token_matrix_aliases, transformer_spec
from tiedtransformer.export.source import load_exportable, reference_logprobs
from tiedtransformer.run.files import RunDir
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID

pytest.importorskip("transformers")
pytest.importorskip("ctranslate2")

MODES = ("none", "decoder", "src_tgt", "three_way")
SENTENCES = [
    "a man rides a bike down the street",
    "two dogs play in the snow",
    "a woman is reading a book in the park",
    "children are playing football on a field",
    "ein mann fährt ein fahrrad die straße entlang",
    "zwei hunde spielen im schnee",
] * 20
HF_OK = {(False, "none"), (False, "decoder"), (False, "three_way"), (True, "none"), (True, "three_way")}
TIED = {  # the groups of token matrices that must share storage
    "none": [["dec_embed"], ["dec_lut"], ["enc_embed"]],
    "decoder": [["dec_embed", "dec_lut"], ["enc_embed"]],
    "src_tgt": [["dec_embed", "enc_embed"], ["dec_lut"]],
    "three_way": [["dec_embed", "dec_lut", "enc_embed"]],
}


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("spm") / "joint"
    _train_one(SENTENCES, prefix, 60, 1.0, "the test sentences")
    return prefix.with_suffix(".model")


def copy_batch(n: int, vocab_size: int, generator=None):
    """A copy task: source and target the same random tokens (3-8 of them), with EOS, BOS and padding."""
    lens = torch.randint(3, 9, (n,), generator=generator)
    width = int(lens.max()) + 1
    src, tgt_in, tgt_out = (torch.full((n, width), PAD_ID) for _ in range(3))
    for i, n_tokens in enumerate(lens.tolist()):
        x = torch.randint(4, vocab_size, (n_tokens,), generator=generator)
        src[i, :n_tokens], src[i, n_tokens] = x, EOS_ID
        tgt_in[i, 0], tgt_in[i, 1 : n_tokens + 1] = BOS_ID, x
        tgt_out[i, :n_tokens], tgt_out[i, n_tokens] = x, EOS_ID
    return src, tgt_in, tgt_out


def write_run(
    root: Path,
    spm_model: Path,
    tying: str,
    norm_first: bool,
    train_steps: int = 0,
    tgt_spm: Path | None = None,
    projection_reg: float = 0.0,
) -> RunDir:
    """A run directory holding a checkpoint of a tiny network whose every parameter is non-trivial
    (random LayerNorm gains and biases too, so that a misplaced one shows); with ``train_steps``, trained
    that long on a copy task, so that its searches end with EOS before any length limit. ``tgt_spm``: a
    target vocabulary of its own (not joint)."""
    vocab = Vocabulary({"en": str(spm_model), "de": str(tgt_spm or spm_model)})
    joint = tgt_spm is None
    net = tiny_model(
        tying=tying,
        norm_first=norm_first,
        vocab_size=vocab.size("en"),
        max_positions=64,
        joint_vocab=joint,
        projection_reg=projection_reg,
    )
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    if train_steps:
        g = torch.Generator().manual_seed(0)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        net.train()
        for _ in range(train_steps):
            src, tgt_in, tgt_out = copy_batch(64, net.cfg.vocab_size, g)
            logits = net(src, tgt_in)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
    run = RunDir(root / f"run-{tying}-{'pre' if norm_first else 'post'}")
    run.checkpoints.mkdir(parents=True)
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {"net": {**net.cfg.__dict__}},
            "TranslationData": {**vocab.state("en", "de"), "direction": "en-de"},
            "global_step": 10,
        },
        run.checkpoints / "last.ckpt",
    )
    run.summary.write_text(
        json.dumps(
            {
                "status": "finished",
                "global_step": 10,
                "train_tokens": 1234,
                "final_test_bleu": 12.5,
                "final_test_bleu_ci": 1.5,
                "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
                "final_search": "beam 4, length penalty 0.6",
            }
        )
    )
    config = {"model": {"decoding": {"beam_size": 4, "length_penalty": 0.6}}, "data": {"source": "demo"}}
    run.config.write_text(yaml.safe_dump(config))
    return run


def inputs(vocab_size: int):
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, vocab_size, (3, 7), generator=g)
    src[:, -1] = EOS_ID
    src[2, 4:] = 0
    src[2, 3] = EOS_ID
    tgt = torch.randint(4, vocab_size, (3, 6), generator=g)
    tgt[:, 0] = 2
    return src, tgt


FRESH_HF = r"""
import json, sys, torch
from safetensors import safe_open
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
cases = json.load(open(sys.argv[1]))
out = {}
for case in cases:
    d = case["dir"]
    model = AutoModelForSeq2SeqLM.from_pretrained(d).eval()
    src, tgt = torch.tensor(case["src"]), torch.tensor(case["tgt"])
    with torch.no_grad():
        lp = model(input_ids=src, attention_mask=(src != 0).long(), decoder_input_ids=tgt).logits.log_softmax(-1)
    def groups(m):
        names = {"enc_embed": m.get_encoder().embed_tokens.weight, "dec_embed": m.get_decoder().embed_tokens.weight,
                 "dec_lut": m.lm_head.weight}
        by = {}
        for n, w in names.items():
            by.setdefault(w.data_ptr(), []).append(n)
        return sorted(sorted(g) for g in by.values())
    first = groups(model)
    model.save_pretrained(d + "-again")
    again = groups(AutoModelForSeq2SeqLM.from_pretrained(d + "-again"))
    with safe_open(d + "/model.safetensors", "pt") as f:
        matrices = [k for k in f.keys() if "embed_tokens" in k or "lm_head" in k or "shared" in k]
    tok = AutoTokenizer.from_pretrained(d)
    greedy = model.generate(input_ids=src, attention_mask=(src != 0).long(), num_beams=1, max_new_tokens=8,
                            do_sample=False)
    out[d] = {"logprobs": lp.tolist(), "groups": first, "groups_again": again, "matrices": len(matrices),
              "ids": tok(case["text"])["input_ids"], "greedy": greedy.tolist(), "class": type(model).__name__}
json.dump(out, open(sys.argv[2], "w"))
"""

FRESH_CT2 = r"""
import json, sys, ctranslate2
cases = json.load(open(sys.argv[1]))
out = {}
for case in cases:
    tr = ctranslate2.Translator(case["dir"])
    scored = tr.score_batch(case["src_tokens"], case["tgt_tokens"])
    greedy = tr.translate_batch(case["src_tokens"], beam_size=1, max_decoding_length=7)  # ours: 8 with EOS
    out[case["dir"]] = {"log_probs": [s.log_probs for s in scored], "greedy": [r.hypotheses[0] for r in greedy]}
json.dump(out, open(sys.argv[2], "w"))
"""


def fresh(script: str, cases: list[dict] | dict, tmp_path: Path) -> dict:
    """``script`` run in a fresh Python, given ``cases`` as JSON (its first argument); what it wrote (its second)."""
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "cases.json"), str(tmp_path / "out.json")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


@pytest.mark.slow
def test_hf_exports_load_offline_in_a_fresh_process_and_compute_our_function(tmp_path, spm_model):
    from tiedtransformer.model.search import greedy_decode

    cases, nets = [], {}
    for norm_first, tying in sorted(HF_OK):
        run = write_run(tmp_path, spm_model, tying, norm_first)
        out = tmp_path / f"hf-{tying}-{norm_first}"
        main(["export", str(run.path), "--to", "hf", "--out", str(out)])
        src = load_exportable(run.path)
        s, t = inputs(src.net.cfg.vocab_size)
        cases.append({"dir": str(out), "src": s.tolist(), "tgt": t.tolist(), "text": ["two dogs play in the snow"]})
        nets[str(out)] = (src, s, t, tying)
        card = (out / "README.md").read_text()
        assert card.startswith("---\n") and f"tying-{tying}" in card and "12.50" in card and "tok:13a" in card
        generation = json.loads((out / "generation_config.json").read_text())
        assert generation["num_beams"] == 4 and generation["length_penalty"] == 0.6
        assert generation["decoder_start_token_id"] == 2
    got = fresh(FRESH_HF, cases, tmp_path)
    for d, (src, s, t, tying) in nets.items():
        r = got[d]
        assert r["class"] == ("PegasusForConditionalGeneration" if src.net.cfg.norm_first else "MarianMTModel")
        torch.testing.assert_close(torch.tensor(r["logprobs"]), reference_logprobs(src.net, s, t), atol=1e-4, rtol=0)
        assert r["groups"] == TIED[tying] and r["groups_again"] == TIED[tying]
        # one tensor per tied group in model.safetensors (untied Pegasus also holds its unused shared matrix)
        assert r["matrices"] == len(TIED[tying]) + (src.net.cfg.norm_first and tying == "none")
        ours = Vocabulary({"en": str(spm_model)}).encode("en", ["two dogs play in the snow"])[0] + [EOS_ID]
        assert r["ids"] == [ours]
        # greedy decoding: the same tokens (transformers' outputs start with the decoder start token)
        mine = greedy_decode(src.net, s, 0.0, 8)
        theirs = [[x for x in row[1:] if x != 0] for row in r["greedy"]]
        assert [row[: row.index(EOS_ID)] if EOS_ID in row else row for row in theirs] == mine


@pytest.mark.parametrize("norm_first", [False, True])
def test_ctranslate2_exports_every_mode_and_norm_exactly_with_tied_matrices_stored_once(
    tmp_path, spm_model, norm_first
):
    from tiedtransformer.export.ct2 import vocabulary
    from tiedtransformer.model.search import greedy_decode

    cases, nets = [], {}
    for tying in MODES:
        run = write_run(tmp_path, spm_model, tying, norm_first)
        out = tmp_path / f"ct2-{tying}"
        main(["export", str(run.path / "checkpoints" / "last.ckpt"), "--to", "ctranslate2", "--out", str(out)])
        src = load_exportable(run.path)
        spec = transformer_spec(src)
        spec.validate()
        spec.optimize()
        aliased = token_matrix_aliases(spec)
        assert len({"enc_embed", "dec_embed", "dec_lut"} - set(aliased)) == len(TIED[tying])  # stored once each
        s, t = inputs(src.net.cfg.vocab_size)
        s, t = s[:2], t[:2]  # CTranslate2 takes tokens without padding: the full-length rows
        toks = vocabulary(src.tokens["src"])
        cases.append(
            {
                "dir": str(out),
                "src_tokens": [[toks[i] for i in row[:-1]] for row in s.tolist()],  # it adds the EOS itself
                "tgt_tokens": [[toks[i] for i in row[1:]] for row in t.tolist()],
            }
        )
        nets[str(out)] = (src, s, t, toks)
        assert (out / "README.md").read_text().count("library_name: ctranslate2") == 1
    got = fresh(FRESH_CT2, cases, tmp_path)
    for d, (src, s, t, toks) in nets.items():
        ref = reference_logprobs(src.net, s, t)
        following = torch.cat([t[:, 1:], torch.full((t.size(0), 1), EOS_ID)], 1)
        expected = ref.gather(-1, following[..., None]).squeeze(-1)
        torch.testing.assert_close(torch.tensor(got[d]["log_probs"]), expected, atol=1e-4, rtol=0)
        mine = greedy_decode(src.net, s, 0.0, 8)
        assert [[toks.index(x) for x in row] for row in got[d]["greedy"]] == mine


def test_refusals_name_their_reason_and_exit_2(tmp_path, spm_model, capsys):
    for norm_first, tying in [(False, "src_tgt"), (True, "src_tgt"), (True, "decoder")]:
        run = write_run(tmp_path, spm_model, tying, norm_first)
        with pytest.raises(SystemExit) as e:
            main(["export", str(run.path), "--to", "hf", "--out", str(tmp_path / "x")])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--to ctranslate2" in err and tying in err and not (tmp_path / "x" / "model.safetensors").exists()
        assert len(err.strip().splitlines()) == 1  # one line that names the reason
    with pytest.raises(SystemExit) as e:
        main(["export", str(run.path), "--to", "hf", "--quantization", "int8"])
    assert e.value.code == 2
    capsys.readouterr()
    projected = write_run(tmp_path / "p", spm_model, "none", False, projection_reg=0.15)
    for to in ("hf", "ctranslate2"):
        with pytest.raises(SystemExit) as e:
            main(["export", str(projected.path), "--to", to, "--out", str(tmp_path / f"p-{to}")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "projection_reg=0" in err and len(err.strip().splitlines()) == 1


def test_an_averaged_checkpoint_is_preferred_and_a_foreign_file_runs_no_code(tmp_path, spm_model, capsys):
    run = write_run(tmp_path, spm_model, "three_way", False)
    shutil.copy(run.checkpoints / "last.ckpt", run.averaged)  # both there: the averaged one is taken
    main(["export", str(run.path), "--to", "ctranslate2", "--out", str(tmp_path / "avg")])
    assert "averaged.ckpt" in capsys.readouterr().out and (tmp_path / "avg" / "model.bin").is_file()
    # --quantization goes through to CTranslate2's converter: int8 weights, a smaller model.bin
    main(["export", str(run.path), "--to", "ctranslate2", "--quantization", "int8", "--out", str(tmp_path / "q")])
    assert (tmp_path / "q" / "model.bin").stat().st_size < (tmp_path / "avg" / "model.bin").stat().st_size

    class Payload:
        def __reduce__(self):
            return (Path("ran").write_text, ("code ran",))

    torch.save({"state_dict": Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(SystemExit) as e:
        main(["export", str(tmp_path / "evil.ckpt"), "--to", "ctranslate2", "--out", str(tmp_path / "e")])
    assert e.value.code == 2 and not Path("ran").exists()
    assert "evil.ckpt" in capsys.readouterr().err


def test_translate_keeps_one_line_per_input_line_with_either_engine(tmp_path, spm_model, capsys, monkeypatch):
    run = write_run(tmp_path, spm_model, "three_way", True)
    text = ["two dogs play in the snow", "", "a man rides a bike " * 30, "   ", "a woman is reading a book"]
    (tmp_path / "in.en").write_text("\n".join(text) + "\n")
    outs = {}
    for engine in ("ours", "ctranslate2"):
        out = tmp_path / f"out.{engine}"
        main(
            [
                "translate",
                str(run.path),
                str(tmp_path / "in.en"),
                "--output",
                str(out),
                "--engine",
                engine,
                "--beam_size",
                "1",
                "--max_len",
                "16",
            ]
        )
        outs[engine] = out.read_text().split("\n")[:-1]
        err = capsys.readouterr().err
        assert "1 of 5 lines have more than --max_len=16 tokens (lines 3)" in err
    assert len(outs["ours"]) == 5 and outs["ours"][1] == "" and outs["ours"][3] == ""
    assert outs["ours"] == outs["ctranslate2"]  # greedy: the same search, exactly the same network
    int8 = tmp_path / "out.int8"
    from tiedtransformer.export import translate as translate_module

    loaded = []
    original = translate_module._translator
    monkeypatch.setattr(translate_module, "_translator", lambda *a: loaded.append(a) or original(*a))
    main(["translate", str(run.path), str(tmp_path / "in.en"), "--output", str(int8), "--engine", "ctranslate2"]
         + ["--compute_type", "int8", "--beam_size", "1", "--max_len", "16"])  # fmt: skip
    assert [a[1] for a in loaded] == ["int8"]  # CTranslate2 loaded the model in int8
    lines = int8.read_text().split("\n")[:-1]
    assert len(lines) == 5 and lines[1] == "" and lines[3] == ""  # the guarantees hold with int8 too
    # the export is made once and kept (by the checkpoint's hash)
    cached = list((tmp_path / "cache" / "ctranslate2").glob("*/model.bin"))
    assert len(cached) == 1
    # another exporter version exports again (it may write another format): the version is in the key
    import tiedtransformer
    from tiedtransformer.export.translate import ctranslate2_model

    monkeypatch.setattr(tiedtransformer, "__version__", "0.0.0-other")
    ctranslate2_model(load_exportable(run.path))
    assert len(list((tmp_path / "cache" / "ctranslate2").glob("*/model.bin"))) == 2


def test_translate_names_a_line_that_is_not_utf8(tmp_path, spm_model, capsys):
    run = write_run(tmp_path, spm_model, "none", False)
    (tmp_path / "in.en").write_bytes(b"two dogs\n\xff\xfe bad\nthe snow\n")
    with pytest.raises(SystemExit) as e:
        main(["translate", str(run.path), str(tmp_path / "in.en")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "in.en:2: not valid UTF-8" in err and "--skip_invalid_utf8" in err
    main(["translate", str(run.path), str(tmp_path / "in.en"), "--skip_invalid_utf8", "--beam_size", "2"])
    lines = (tmp_path / "in.en.de").read_text().split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == "" and "not valid UTF-8" in capsys.readouterr().err


FRESH_BEAM = r"""
import json, sys, torch, ctranslate2
from transformers import AutoModelForSeq2SeqLM
case = json.load(open(sys.argv[1]))
src = torch.tensor(case["src"])
hf = AutoModelForSeq2SeqLM.from_pretrained(case["hf"]).eval()
out = hf.generate(input_ids=src, attention_mask=(src != 0).long(), num_beams=4, length_penalty=0.0,
                  max_new_tokens=case["limit"], do_sample=False)
ct2 = ctranslate2.Translator(case["ct2"]).translate_batch(  # its limit counts no EOS, ours does
    case["src_tokens"], beam_size=4, length_penalty=0.0, max_decoding_length=case["limit"] - 1)
json.dump({"hf": out.tolist(), "ct2": [r.hypotheses[0] for r in ct2]}, open(sys.argv[2], "w"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("norm_first", [False, True])
def test_beam_4_outputs_of_a_trained_model_equal_ours_where_the_length_penalties_agree(tmp_path, spm_model, norm_first):
    """With length penalty 0 the three searches score hypotheses alike (ours is GNMT's ((5+n)/6)^α, theirs
    n^α: equal only at α = 0); a model trained on a copy task ends its hypotheses with EOS well before the
    length limit, where the searches' rules differ (ours adds the forced EOS's log-probability, theirs not)."""
    from tiedtransformer.export.ct2 import vocabulary
    from tiedtransformer.model.search import beam_search

    run = write_run(tmp_path, spm_model, "three_way", norm_first, train_steps=400)
    main(["export", str(run.path), "--to", "hf", "--out", str(tmp_path / "hf")])
    main(["export", str(run.path), "--to", "ctranslate2", "--out", str(tmp_path / "ct2")])
    src = load_exportable(run.path)
    s, _, _ = copy_batch(16, src.net.cfg.vocab_size, torch.Generator().manual_seed(7))
    limit = 20  # tokens after BOS, EOS included; our max_len_b
    ours = beam_search(src.net, s, 4, 0.0, 0.0, limit)
    copied = sum(h == [x for x in row if x not in (PAD_ID, EOS_ID)] for h, row in zip(ours, s.tolist()))
    assert copied >= 4 and all(len(h) < limit - 1 for h in ours)  # it learned; every search ended with EOS
    toks = vocabulary(src.tokens["src"])
    case = {
        "hf": str(tmp_path / "hf"),
        "ct2": str(tmp_path / "ct2"),
        "src": s.tolist(),
        "src_tokens": [[toks[i] for i in row if i not in (PAD_ID, EOS_ID)] for row in s.tolist()],
        "limit": limit,
    }
    got = fresh(FRESH_BEAM, case, tmp_path)
    hf = [[x for x in row[1:] if x not in (PAD_ID, EOS_ID)] for row in got["hf"]]
    ct2 = [[toks.index(x) for x in row] for row in got["ct2"]]
    assert hf == ours
    assert ct2 == ours


def test_translate_with_our_engine_starts_neither_lightning_nor_transformers(tmp_path, spm_model):
    run = write_run(tmp_path, spm_model, "none", False)
    (tmp_path / "in.en").write_text("two dogs play in the snow\n")
    command = ["translate", str(run.path), str(tmp_path / "in.en"), "--beam_size", "1", "--max_len", "16"]
    probe = (
        "import sys\nfrom tiedtransformer.cli import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('lightning', 'transformers', 'ctranslate2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("[]"), out.stdout[-300:]
    assert len((tmp_path / "in.en.de").read_text().splitlines()) == 1


FRESH_TOKENIZER = r"""
import json, sys
from transformers import AutoTokenizer
case = json.load(open(sys.argv[1]))
tok = AutoTokenizer.from_pretrained(case["dir"])
src = tok(case["source"])["input_ids"]
tgt = tok(text_target=case["target"])["input_ids"]
json.dump({"src": src, "tgt": tgt, "decoded": tok.batch_decode(tgt, skip_special_tokens=True)}, open(sys.argv[2], "w"))
"""


def test_separate_vocabularies_export_a_tokenizer_for_each_side(tmp_path, spm_model):
    prefix = tmp_path / "de"
    german = [s for s in SENTENCES if " ein" in f" {s}" or "zwei" in s] + ["die frau liest ein buch im park"] * 20
    _train_one(german * 3, prefix, 60, 1.0, "the German test sentences")
    run = write_run(tmp_path, spm_model, "decoder", False, tgt_spm=prefix.with_suffix(".model"))
    main(["export", str(run.path), "--to", "hf", "--out", str(tmp_path / "hf")])
    assert (tmp_path / "hf" / "target_vocab.json").is_file()
    source, target = ["two dogs play in the snow"], ["zwei hunde spielen im schnee"]
    got = fresh(FRESH_TOKENIZER, {"dir": str(tmp_path / "hf"), "source": source, "target": target}, tmp_path)
    vocab = Vocabulary({"en": str(spm_model), "de": str(prefix.with_suffix(".model"))})
    assert got["src"] == [vocab.encode("en", source)[0] + [EOS_ID]]
    assert got["tgt"] == [vocab.encode("de", target)[0] + [EOS_ID]]  # the target side's own ids
    assert vocab.encode("de", target)[0] != vocab.encode("en", target)[0]  # the two vocabularies differ
    assert got["decoded"] == target

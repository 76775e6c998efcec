"""benchmarks/table.py: the README's performance tables are printed from committed JSON lines."""

import json
from pathlib import Path

from benchmarks.table import table

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def lines_of(name: str) -> list[dict]:
    return [json.loads(x) for x in (RESULTS / name).read_text().splitlines() if x.startswith("{")]


def test_every_row_of_the_readme_tables_comes_from_its_results_file():
    readme = REPO / "README.md"
    text = readme.read_text()
    for name in ("20261207-all-cpu.jsonl", "20261123-all-cuda.jsonl"):
        rows = [r for r in table(lines_of(name)).splitlines() if r.startswith("| ")]
        assert len(rows) > 8
        missing = [r for r in rows if r not in text]
        assert not missing, f"{name}: rows not in the README: {missing}"


def test_a_gpu_run_without_ctranslate2_has_no_ctranslate2_row_and_reports_mfu():
    out = table(lines_of("20261123-all-cuda.jsonl"))
    rows = out.splitlines()
    assert "CTranslate2" not in out
    assert "H100" in rows[0]
    steps = [r for r in rows if r.startswith("| train step")]
    assert all("MFU" in r and "on cuda" in r for r in steps)
    assert any("batch 400×64" in r for r in steps)
    # the tying row follows the train steps that came before it in the file, not the later one
    tying = next(i for i, r in enumerate(rows) if r.startswith("| tying modes"))
    assert rows[tying - 1].startswith("| train step, d 256") and "bf16" in rows[tying]


def test_a_cpu_line_from_before_the_batch_was_recorded_reads_as_the_cpu_default():
    line = lines_of("20261122b-all-cpu.jsonl")[0]
    assert "batch" not in line
    assert "batch 32×32, fp32 |" in table([line])


def test_the_precision_row_gives_each_precision_its_own_time():
    for name, default, fast in (
        ("20261122b-all-cpu.jsonl", "32-true", "fp32"),
        ("20261123c-all-cpu.jsonl", "bf16-mixed", "bf16"),
    ):
        line = next(x for x in lines_of(name) if x["benchmark"] == "precision")
        row = table([line])
        slow = "bf16" if fast == "fp32" else "fp32"
        assert f"the default, {default}: {line[fast + '_ms']:,.1f} ms | {slow}: {line[slow + '_ms']:,.1f} ms" in row
        assert line[fast + "_ms"] < line[slow + "_ms"]  # the default rule picked the faster one on both machines


def test_a_train_step_line_names_the_model_it_timed():
    fp32, bf16 = table(lines_of("20261123c-train-step-recipe-cpu.jsonl")).splitlines()[-2:]
    assert fp32.startswith("| train step, d 192, 3+3, FFN 768, V 6000, three-way tied, batch 32×32, fp32 |")
    assert bf16.startswith("| train step, d 192, 3+3, FFN 768, V 6000, three-way tied, batch 32×32, bf16 |")


def test_the_recipe_step_precision_row_names_the_default_and_the_attention_ablation():
    line = lines_of("20261123d-precision-cpu.jsonl")[1]
    row = table([line]).splitlines()[-1]
    tps = line["target_tok_per_s"]
    assert f"the default, bf16-mixed: {tps['bf16']:,} target tok/s | fp32: {tps['fp32']:,};" in row
    assert f"attention in bf16 too (the code before 2026-11-23): {tps['bf16_attention_bf16']:,}" in row
    assert f"| **{line['ratio']:.2f}** (" in row


def test_the_dropout_row_names_both_dropouts_and_the_step_without_dropout():
    line = lines_of("20261123e-dropout-cpu.jsonl")[-1]
    row = table([line]).splitlines()[-1]
    tps = line["target_tok_per_s"]
    assert f"with dropout {line['dropout']}, {line['precision']}," in row
    assert f"`{line['ours_name']}` (ours): {tps['ours']:,} target tok/s | `torch.nn.Dropout`: {tps['torch']:,}" in row
    assert f"(no dropout at all: {tps['none']:,})" in row and f"| **{line['ratio']:.2f}** (" in row


def test_the_adamw_row_gives_both_optimizers_their_time_per_step():
    line = lines_of("20261123e-optimizer-cpu.jsonl")[-1]
    row = table([line]).splitlines()[-1]
    ms = line["ms_per_step"]
    assert f"| AdamW step over the recipe's {line['parameters']:,} parameters | fused: {ms['fused']} ms |" in row
    assert f"foreach: {ms['foreach']} ms | **{line['ratio']:.2f}** (" in row


def test_the_whole_command_row_is_followed_by_its_phases_where_the_line_has_them():
    line = lines_of("20261122-similarity.jsonl")[0]
    assert line["benchmark"] == "similarity_whole_command" and "phases_s" not in line
    assert not [r for r in table([line]).splitlines() if "time goes" in r]
    phases = {"start-up and imports": 1.03, "matrix products": 4.12, "exit": 0.11}
    rows = table([{**line, "phases_s": phases}]).splitlines()
    assert rows[-1].startswith("| same, where the command's time goes")
    assert "| start-up and imports 1.03, matrix products 4.12, exit 0.11 |" in rows[-1]


def test_the_strongest_peer_settings_are_named_in_their_rows():
    """The 2026-12-07 lines record which setting of each peer was measured fastest: the rows say so."""
    out = table(lines_of("20261207-all-cpu.jsonl"))
    assert "(eager attention, its faster: sdpa 4,298, eager 4,998)" in out
    assert "against CTranslate2 at its fastest compute type (float32 198.7, int8 206.2 sent/s)" in out
    assert "`datasets.map` once, cached (num_proc 2, the fastest of 1: 0.99 s, 2: 0.62 s, 4: 0.67 s" in out
    assert "| in one process, 3000×512: top/bottom-1000 pairs, 10-NN, histogram | 0.071 (0.070-0.111) s |" in out
    old = table(lines_of("20261123f-all-cpu.jsonl"))  # older lines print as they did
    assert "against CTranslate2 fp32 (converted" in old and "`MarianMTModel` 315 (288-328)" in old

import pytest
import torch

from tests.conftest import tiny_config, tiny_model
from tiedtransformer.errors import ConfigError
from tiedtransformer.model.loss import label_smoothed_nll
from tiedtransformer.model.network import TYING_MODES, TiedTransformer, TransformerConfig
from tiedtransformer.specials import BOS_ID, EOS_ID, PAD_ID


def batch(B=3, S=7, T=5, V=23, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V, (B, S), generator=g)
    tgt = torch.randint(4, V, (B, T), generator=g)
    return src, tgt


@pytest.mark.parametrize("norm_first", [False, True])
def test_shapes(norm_first):
    m = tiny_model(norm_first=norm_first)
    src, tgt = batch()
    memory, mask = m.encode(src)
    assert memory.shape == (3, 7, 16) and mask.shape == (3, 1, 1, 7)
    assert m.decode(tgt, memory, mask).shape == (3, 5, 16)
    assert m(src, tgt).shape == (3, 5, 23)


@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_mask_future_tokens_do_not_change_earlier_outputs(norm_first):
    m = tiny_model(norm_first=norm_first)
    src, tgt = batch()
    changed = tgt.clone()
    changed[:, 3:] = torch.randint(4, 23, (3, 2))
    a, b = m(src, tgt), m(src, changed)
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_padding_does_not_change_outputs():
    m = tiny_model()
    src, tgt = batch(B=1, S=5, T=4)
    alone = m(src, tgt)
    padded_src = torch.cat([src, torch.full((1, 6), PAD_ID)], dim=1)
    padded_tgt = torch.cat([tgt, torch.full((1, 3), PAD_ID)], dim=1)
    other_src, other_tgt = batch(B=1, S=11, T=7, seed=1)
    both = m(torch.cat([padded_src, other_src]), torch.cat([padded_tgt, other_tgt]))
    torch.testing.assert_close(both[:1, :4], alone, rtol=1e-5, atol=1e-5)


EXPECTED_TIES = {
    "none": [],
    "decoder": [("dec_embed", "dec_lut")],
    "src_tgt": [("enc_embed", "dec_embed")],
    "three_way": [("enc_embed", "dec_embed"), ("enc_embed", "dec_lut"), ("dec_embed", "dec_lut")],
}


@pytest.mark.parametrize("tying", TYING_MODES)
def test_tied_matrices_are_one_parameter(tying):
    m = tiny_model(tying=tying)
    mats = m.embedding_matrices()
    for a in mats:
        for b in mats:
            if a < b:
                same = (a, b) in EXPECTED_TIES[tying] or (b, a) in EXPECTED_TIES[tying]
                assert (mats[a] is mats[b]) == same, (a, b)
                assert (mats[a].data_ptr() == mats[b].data_ptr()) == same
    ties = m.tied_with()
    assert all(len(ties[n]) == sum(n in pair for pair in EXPECTED_TIES[tying]) for n in mats)


@pytest.mark.parametrize("tying", ["decoder", "src_tgt", "three_way"])
def test_gradient_reaches_the_shared_matrix_from_every_role(tying):
    """Each role alone (its output's dependence on it) sends gradient into the one shared tensor."""
    m = tiny_model(tying=tying).train()
    src, tgt = batch()
    mats = m.embedding_matrices()
    memory, mask = m.encode(src)
    hidden = m.decode(tgt, memory, mask)
    role_outputs = {
        "enc_embed": memory,  # depends on enc_embed (and on nothing of the decoder)
        "dec_embed": m.decode(tgt, memory.detach(), mask),  # decoder input embedding only
        "dec_lut": m.dec_lut(hidden.detach()),  # output projection only
    }
    for role, out in role_outputs.items():
        (grad,) = torch.autograd.grad(out.sum(), mats[role], retain_graph=True, allow_unused=True)
        assert grad is not None and grad.abs().sum() > 0, role
    # and the summed gradient of a training loss is the sum over the roles
    shared = [n for n in mats if m.tied_with()[n]]
    logits = m(src, tgt)
    logits.logsumexp(-1).sum().backward()
    assert mats[shared[0]].grad is not None and mats[shared[0]].grad.abs().sum() > 0


@pytest.mark.parametrize(
    "tying, expected", [("none", 101.0e6), ("decoder", 82.0e6), ("src_tgt", 82.0e6), ("three_way", 63.1e6)]
)
def test_parameter_counts_of_transformer_base(tying, expected):
    with torch.device("meta"):
        m = TiedTransformer(TransformerConfig(tying=tying))
    assert abs(m.num_params() - expected) / expected < 0.01
    assert m.num_params(unique=False) == pytest.approx(101.0e6, rel=0.01)
    distinct = {"none": 3, "decoder": 2, "src_tgt": 2, "three_way": 1}[tying]
    assert m.embedding_params() == distinct * 37000 * 512


@pytest.mark.parametrize("tying", ["src_tgt", "three_way"])
def test_joint_vocab_modes_reject_separate_vocabularies(tying):
    with pytest.raises(ConfigError, match=r"data.joint_vocab=true.*model.net.tying 'none' or 'decoder'"):
        tiny_config(tying=tying, joint_vocab=False)


@pytest.mark.parametrize("tying", ["none", "decoder"])
def test_separate_vocabularies_are_fine_without_sharing_the_encoder(tying):
    tiny_model(tying=tying, joint_vocab=False)


def test_unknown_tying_mode_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="none, decoder, src_tgt, three_way"):
        tiny_config(tying="all")


def test_projection_regularization_adds_lambda_times_norm_of_p():
    m = tiny_model(projection_reg=0.15)
    assert m.projection is not None and m.projection.weight.shape == (16, 16)
    expected = 0.15 * torch.linalg.matrix_norm(m.projection.weight)
    torch.testing.assert_close(m.regularization_loss(), expected)
    # P starts as the identity, so the network starts as the unregularised one
    plain = tiny_model()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("projection")})
    src, tgt = batch()
    torch.testing.assert_close(m(src, tgt), plain(src, tgt))
    assert tiny_model().regularization_loss() == 0


def test_encoder_output_table_is_each_token_encoded_alone():
    m = tiny_model()
    table = m.encoder_output_table(batch_size=5)
    assert table.shape == (23, 16)
    memory, _ = m.encode(torch.tensor([[7]]))
    torch.testing.assert_close(table[7], memory[0, 0])


def test_sequence_longer_than_the_position_table_is_a_clear_error():
    m = tiny_model(max_positions=8)
    with pytest.raises(ValueError, match="max_positions=8"):
        m.encode(torch.full((1, 9), 5))


def test_specials_are_distinct():
    assert len({PAD_ID, BOS_ID, EOS_ID}) == 3


@pytest.mark.parametrize("tying", TYING_MODES)
def test_token_matrices_name_the_four_tables_and_keep_ties(tying):
    m = tiny_model(tying=tying)
    mats = m.token_matrices()
    assert list(mats) == ["enc_embed", "enc_lut", "dec_embed", "dec_lut"]
    assert all(t.shape == (23, 16) and t.dtype == torch.float32 and not t.requires_grad for t in mats.values())
    for a, others in m.tied_with().items():
        assert all(mats[a] is mats[b] for b in others)
    assert mats["enc_lut"] is not mats["enc_embed"]


def _teacher_forced_batch(length: int, pad_last: bool = False):
    src, tgt = torch.randint(4, 23, (3, length + 1)), torch.randint(4, 23, (3, length))
    if pad_last:
        tgt[2, 3:] = 0  # padding
    return src, torch.cat([torch.full((3, 1), 1), tgt[:, :-1]], 1), tgt


@pytest.mark.parametrize("tying,projection_reg", [("three_way", 0.0), ("none", 0.15)])
def test_loss_and_its_gradients_equal_those_of_forwards_whole_logits(tying, projection_reg):
    torch.manual_seed(0)
    m = tiny_model(tying=tying, projection_reg=projection_reg)  # eval: no dropout
    src, tgt_in, tgt_out = _teacher_forced_batch(5, pad_last=True)
    out = m.loss(src, tgt_in, tgt_out, label_smoothing=0.1)
    out.loss.backward()
    grads = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    ref_sum, ref_nll, ref_n = label_smoothed_nll(m(src, tgt_in), tgt_out, 0.1)
    (ref_sum / ref_n + m.regularization_loss()).backward()
    for a, b in zip((out.loss_sum, out.nll_sum, out.tokens), (ref_sum, ref_nll, ref_n)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(out.loss, ref_sum / ref_n + m.regularization_loss())
    for g, p in zip(grads, m.parameters()):
        torch.testing.assert_close(g, p.grad)


@pytest.mark.parametrize("tying,projection_reg", [("three_way", 0.0), ("decoder", 0.15)])
def test_the_whole_logits_loss_gives_the_fused_loss_and_its_gradients(tying, projection_reg):
    # --model.optim.fused_loss=false (a GPU's default) must train the same model as the fused loss
    torch.manual_seed(0)
    m = tiny_model(tying=tying, projection_reg=projection_reg)
    src, tgt_in, tgt_out = _teacher_forced_batch(5, pad_last=True)
    results = []
    for fused in (True, False):
        out = m.loss(src, tgt_in, tgt_out, label_smoothing=0.1, fused=fused)
        out.loss.backward()
        results.append((out, [p.grad.clone() for p in m.parameters()]))
        m.zero_grad()
    (fused_out, fused_grads), (whole_out, whole_grads) = results
    for field in ("loss", "loss_sum", "nll_sum", "tokens"):
        torch.testing.assert_close(getattr(whole_out, field), getattr(fused_out, field))
    assert int(whole_out.tokens) == int((tgt_out != 0).sum())
    for a, b in zip(whole_grads, fused_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_compiled_teacher_forcing_gives_the_eager_loss_and_gradients_and_the_same_state_dict():
    torch.manual_seed(0)
    eager, compiled = tiny_model(), tiny_model()
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_teacher_forcing()
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert compiled._compiled and hasattr(compiled._compiled[0], "_torchdynamo_orig_callable")
    for length in (5, 7):  # another length must not break the compiled graph (dynamic shapes)
        batch = _teacher_forced_batch(length)
        losses = []
        for m in (eager, compiled):
            m.zero_grad()
            loss = m.loss(*batch).loss
            loss.backward()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[0], losses[1])
        for a, b in zip(eager.parameters(), compiled.parameters()):
            torch.testing.assert_close(a.grad, b.grad)


def test_training_flops_follow_the_6n_rule_per_token_and_count_a_tied_matrix_per_use():
    m = tiny_model(tying="three_way")
    enc = sum(p.numel() for p in m.encoder.parameters())
    dec = sum(p.numel() for p in m.decoder.parameters())
    V, d = m.cfg.vocab_size, m.cfg.d_model
    assert m.flops(10, 7) == 6 * (enc * 10 + (dec + V * d) * 7)
    assert m.flops(10, 7) == tiny_model(tying="none").flops(10, 7)  # tying saves no FLOPs
    assert 3 * m.flops(10, 7, backward=False) == m.flops(10, 7)  # forward only: 2 per weight


def test_the_tie_structure_is_worked_out_in_one_place_from_object_identity():
    from tiedtransformer.model.network import first_tied, tied_groups

    a, b = object(), object()
    mats = {"enc_embed": a, "enc_lut": b, "dec_embed": a, "dec_lut": a}
    assert first_tied(mats) == {"enc_embed": None, "enc_lut": None, "dec_embed": "enc_embed", "dec_lut": "enc_embed"}
    assert tied_groups(mats)["dec_lut"] == ["enc_embed", "dec_embed"] and tied_groups(mats)["enc_lut"] == []
    assert tiny_model(tying="decoder").tied_with() == {
        "enc_embed": [],
        "dec_embed": ["dec_lut"],
        "dec_lut": ["dec_embed"],
    }


def test_a_bf16_autocast_training_step_of_the_network_follows_fp32():
    """The whole teacher-forced loss under CPU bf16 autocast (attention in fp32 inside) stays close to
    the fp32 loss, and every parameter gets a finite gradient."""
    torch.manual_seed(0)
    net = tiny_model(tying="three_way", dropout=0.0)
    src, tgt_in, tgt_out = _teacher_forced_batch(6)
    ref = net.loss(src, tgt_in, tgt_out, 0.1).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = net.loss(src, tgt_in, tgt_out, 0.1).loss
    loss.backward()
    assert abs(loss.item() - ref.item()) < 0.05 * ref.item()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    # a bf16 model without autocast runs too: attention hands its next projection bf16
    assert net.bfloat16()(src, tgt_in).dtype == torch.bfloat16


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_a_dropout_that_is_not_a_probability_is_a_config_error(p):
    with pytest.raises(ConfigError, match="model.net.dropout"):
        tiny_config(dropout=p)

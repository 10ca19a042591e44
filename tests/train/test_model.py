import numpy as np
import pytest
import torch

from snowcoder_train.model import (
    attention_for,
    build_model,
    demo_model_config,
    flops_per_token,
    num_parameters,
    paper_model_config,
)
from snowcoder_train.train import forward_loss, make_loss_fn, make_optimizer, train_step
from tests.train.conftest import TINY_MODEL


def test_build_model_matches_the_config():
    torch.manual_seed(0)
    model = build_model(TINY_MODEL)
    assert model.config._attn_implementation == "sdpa"
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied
    assert sum(p.numel() for p in model.parameters()) == num_parameters(TINY_MODEL)


def test_build_model_is_reproducible_under_a_seed():
    torch.manual_seed(3)
    first = build_model(TINY_MODEL).state_dict()
    torch.manual_seed(3)
    second = build_model(TINY_MODEL).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_paper_model_has_about_1_36b_parameters():
    config = paper_model_config()
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (
        24,
        2048,
        5632,
    )
    assert config.num_key_value_heads == config.num_attention_heads == 16
    assert num_parameters(config) == pytest.approx(1.36e9, rel=0.01)


def test_demo_model_size():
    assert num_parameters(demo_model_config(8000)) == pytest.approx(5.26e6, rel=0.01)


def test_flops_per_token_is_6n_plus_attention():
    h, layers, ffn, vocab, seq = 64, 2, 128, 300, 32
    n_matmul = layers * (4 * h * h + 3 * h * ffn) + vocab * h
    assert flops_per_token(TINY_MODEL, seq) == 6 * n_matmul + 12 * layers * h * seq


def test_flops_per_token_counts_grouped_kv_heads():
    grouped = {**TINY_MODEL, "num_key_value_heads": 1}  # k, v project to 16 of 64 dims
    saved = 6 * 2 * (2 * 64 * 48)  # two layers, k and v: 64 x (64 - 16) weights fewer each
    assert flops_per_token(TINY_MODEL, 32) - flops_per_token(grouped, 32) == saved


def test_attention_is_sdpa_on_gpus_and_eager_on_cpus():
    assert attention_for("cuda") == "sdpa"
    assert attention_for("cpu") == "eager"
    torch.manual_seed(0)
    sdpa, eager = build_model(TINY_MODEL), build_model(TINY_MODEL, attn_implementation="eager")
    eager.load_state_dict(sdpa.state_dict())
    batch = torch.randint(0, TINY_MODEL["vocab_size"], (2, 17))
    assert forward_loss(sdpa, batch, False).item() == pytest.approx(
        forward_loss(eager, batch, False).item(), abs=1e-5
    )


def _losses(loss_fn, steps: int = 3) -> list[float]:
    torch.manual_seed(0)
    model = build_model(TINY_MODEL, attn_implementation="eager")
    optimizer = make_optimizer(model, 0.1, (0.9, 0.95))
    batch = torch.randint(0, TINY_MODEL["vocab_size"], (2, 17), generator=torch.Generator())
    return [
        train_step(model, optimizer, [batch], 1e-3, 1.0, False, loss_fn)[0] for _ in range(steps)
    ]


def test_compiled_training_gives_the_eager_losses():
    compiled = make_loss_fn(True)
    losses = _losses(compiled)
    assert compiled.compiled is not None, "compiled, not fallen back"
    np.testing.assert_allclose(losses, _losses(forward_loss), rtol=1e-4)


def test_failed_compilation_warns_and_trains_eagerly(monkeypatch):
    def broken_compile(fn, **_):
        def run(*args, **kwargs):
            raise RuntimeError("no C compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    loss_fn = make_loss_fn(True)
    with pytest.warns(UserWarning, match="no C compiler"):
        losses = _losses(loss_fn)
    assert loss_fn.compiled is None
    assert losses == _losses(forward_loss)

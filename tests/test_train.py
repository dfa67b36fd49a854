"""The training loop, on tiny models (seconds on a CPU)."""

from __future__ import annotations

import math

import pytest
import torch

import lora_edu
from lora_edu.data import collate, encode_example, make_examples
from lora_edu.inject import inject_lora
from lora_edu.lora import LoRAConfig
from lora_edu.train import TrainConfig, answer_loss, lr_at, train, validation_loss


def _tiny(tok, seed=0):
    """A tiny Llama model that speaks the real tokenizer's vocabulary."""
    return lora_edu.tiny_model(vocab_size=len(tok), seed=seed)


def _quiet(**kw) -> TrainConfig:
    return TrainConfig(**{"progress": False, "seq_len": 128, **kw})


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[:10] == pytest.approx([1e-3 * (s + 1) / 10 for s in range(10)])
    assert max(lrs) == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine: never goes up
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)  # ends near lr * min_lr_ratio
    assert lr_at(55, cfg) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))


@pytest.mark.parametrize(
    "kw", [{"steps": 0}, {"lr": 0.0}, {"lr": float("nan")}, {"batch_size": 0}, {"max_grad_norm": 0.0}, {"min_lr_ratio": 2.0}]
)
def test_config_is_validated(kw):
    with pytest.raises(ValueError):
        TrainConfig(**kw)


def test_answer_loss_matches_hugging_face_loss(tok):
    model = _tiny(tok)
    feats = [encode_example(tok, ex, 128) for ex in make_examples("dates", 3) + make_examples("extract", 2)]
    batch = collate(feats, tok.pad_token_id)
    ours = answer_loss(model, batch)
    theirs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    torch.testing.assert_close(ours, theirs)


def test_full_finetune_loss_drops_and_is_deterministic(tok):
    examples = make_examples("dates", 32)
    cfg = _quiet(steps=12, batch_size=4, lr=3e-3, warmup_steps=2, eval_every=6)
    val = make_examples("dates", 8, "validation")
    model = _tiny(tok).requires_grad_(True)
    history = train(model, tok, examples, cfg, val_examples=val)
    assert len(history.loss) == len(history.lr) == len(history.step_time) == len(history.tokens_per_s) == 12
    assert history.val_step == [6, 12] and len(history.val_loss) == 2
    assert sum(history.loss[-3:]) / 3 < 0.85 * sum(history.loss[:3]) / 3
    assert history.val_loss[-1] < validation_loss(_tiny(tok), tok, val)
    assert history.trainable_params == sum(p.numel() for p in model.parameters())
    assert history.state_bytes >= 4 * history.trainable_params * 4  # weights, grads and two Adam states, fp32
    assert not model.training  # left in eval mode

    again = _tiny(tok).requires_grad_(True)
    assert train(again, tok, examples, cfg, val_examples=val).loss == history.loss
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_lora_training_leaves_the_base_unchanged(tok):
    model = inject_lora(_tiny(tok), LoRAConfig(r=4, alpha=8, target_modules=("q_proj", "v_proj")))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    history = train(model, tok, make_examples("extract", 16), _quiet(steps=6, batch_size=4, lr=1e-2, warmup_steps=1))
    assert history.loss[-1] < history.loss[0]
    assert history.trainable_params == sum(p.numel() for p in lora_before.values())
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"{name} changed"
        else:
            assert not torch.equal(p, lora_before[name]), f"{name} did not train"


def test_gradient_checkpointing_gives_the_same_gradients(tok):
    """With frozen inputs (the LoRA case) checkpointing must still reach the adapters, with the same gradients."""
    from lora_edu.train import _set_checkpointing

    batch = collate([encode_example(tok, ex, 128) for ex in make_examples("dates", 4)], tok.pad_token_id)
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same random A in both models
        model = inject_lora(_tiny(tok), LoRAConfig(r=4, alpha=8, target_modules=("q_proj", "v_proj")))
        with torch.no_grad():  # non-zero B, so that A gets a gradient too
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
        if checkpointing:
            _set_checkpointing(model, True)
        model.train()
        answer_loss(model, batch).backward()
        grads.append([p.grad for p in model.parameters() if p.requires_grad])
    assert all(g is not None and g.abs().sum() > 0 for g in grads[1])
    for plain, checkpointed in zip(*grads):
        torch.testing.assert_close(checkpointed, plain)


def test_train_with_checkpointing_trains_and_switches_it_off(tok):
    model = inject_lora(_tiny(tok), LoRAConfig(r=4, alpha=8, target_modules=("q_proj", "v_proj")))
    history = train(model, tok, make_examples("dates", 8), _quiet(steps=3, batch_size=4, lr=1e-2, gradient_checkpointing=True))
    assert history.loss[-1] < history.loss[0]
    assert not model.is_activation_checkpointing
    assert all(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_train_errors(tok):
    model = _tiny(tok).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(model, tok, make_examples("dates", 4), _quiet(steps=1))
    model.requires_grad_(True)
    with pytest.raises(ValueError, match="raise max_len"):
        train(model, tok, make_examples("dates", 4), _quiet(steps=1, seq_len=8))
    with pytest.raises(TypeError):
        train(model, tok, make_examples("dates", 4), {"steps": 1})


def test_plots_of_a_run():
    from matplotlib.figure import Figure

    from lora_edu import plot
    from lora_edu.train import History

    history = History(step=[1, 2, 3, 4], loss=[2.0, 1.0, 0.5, 0.2], lr=[1e-3, 2e-3, 1e-3, 0.0],
                      val_step=[2, 4], val_loss=[1.2, 0.4])
    fig = plot.plot_history(history)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["training batch", "validation"]

    curve = [0.5, 0.8, 1.0]
    fig = plot.plot_update_energy({"q_proj": curve}, {"q_proj": [0.4, 0.7, 1.0]}, r=2)
    assert fig.axes[0].get_ylim()[1] > 1.0 and len(fig.axes[0].get_lines()) >= 3

    fig = plot.plot_rank_sweep([1, 8], {"α/r": [0.8, 0.9], "α/√r": [0.8, 0.95]}, base_accuracy=0.0)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "8"]
    assert fig.axes[0].get_lines()[1].get_ydata().tolist() == [80.0, 95.0]

import math

import pytest
import torch

from training.losses import distillation_loss, hidden_mse_loss, logits_kd_loss, plm_loss


def _softmax(xs, t):
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


def test_logits_kd_matches_hand_computation_at_temperature():
    zs = [[1.0, 2.0, 0.5], [3.0, -1.0, 0.0]]
    zt = [[0.0, 1.0, 2.0], [9.0, 9.0, 9.0]]
    student, teacher = torch.tensor([zs]), torch.tensor([zt])
    mask = torch.tensor([[1, 0]])  # only the first position counts
    for temperature in (1.0, 2.0, 5.0):
        ps, pt = _softmax(zs[0], temperature), _softmax(zt[0], temperature)
        expected = sum(a * (math.log(a) - math.log(b)) for a, b in zip(pt, ps))
        got = logits_kd_loss(student, teacher, mask, temperature)
        assert float(got) == pytest.approx(expected, rel=1e-5)


def test_logits_kd_averages_over_masked_positions():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    per = [
        float(logits_kd_loss(s[b : b + 1, i : i + 1], t[b : b + 1, i : i + 1], torch.ones(1, 1), 2.0))
        for b, i in [(0, 0), (0, 1), (1, 0)]
    ]
    assert float(logits_kd_loss(s, t, mask, 2.0)) == pytest.approx(sum(per) / 3, rel=1e-6)


def test_hidden_mse_matches_hand_computation():
    hs = torch.tensor([[[1.0, 2.0], [5.0, 5.0]]])
    ht = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1, 0]])
    assert float(hidden_mse_loss(hs, ht, mask)) == pytest.approx((1.0 + 4.0) / 2)


def test_plm_ignores_padding():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])
    labels = torch.tensor([[0, -100]])
    assert float(plm_loss(logits, labels)) == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 1)), rel=1e-6)


def test_lambda_weights_both_distillation_terms():
    terms = distillation_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), lam=0.5)
    assert float(terms.total) == pytest.approx(1.0 + 0.5 * (2.0 + 3.0))
    assert terms.as_floats() == {"total": 3.5, "plm": 1.0, "logits": 2.0, "hidden": 3.0}


@pytest.mark.parametrize("hidden", ["decoder", "encoder", "both"])
def test_student_equal_to_teacher_has_zero_distillation_terms(backbone, toy_tasks, hidden):
    from training.data.batching import Collator
    from training.data.sampler import Row
    from training.prompt_params import PromptParams
    from training.steps import distill_loss

    torch.manual_seed(0)
    teachers = torch.randn(2, 4, backbone.d_model)  # (K, l, d)
    # student task k == teacher k: P* = teacher 0 with u = v = ones for task 0; task 1 uses its own P*
    student = PromptParams.with_ones(teachers[0], 1, 1, train_shared=True, train_factors=True)
    collator = Collator(backbone.tokenizer, backbone.device)
    rows = [Row(0, e) for e in toy_tasks["polarity"].train[:6]]
    step = distill_loss(backbone, student, teachers[:1], collator, lam=0.7, temperature=2.0, hidden=hidden)
    total, terms = step(rows)
    logs = {k: float(v) for k, v in terms.items()}  # 0-d tensors: the trainer reads them with the loss, in one sync
    assert logs["logits"] == pytest.approx(0.0, abs=1e-6)
    assert logs["hidden"] == pytest.approx(0.0, abs=1e-6)
    assert float(total.detach()) == pytest.approx(logs["plm"], rel=1e-6)
    assert logs["plm"] > 0

import pytest
import torch

from mpt_core import compose, compose_rows, inject


def test_compose_matches_formula_for_mixed_families_and_ranks():
    torch.manual_seed(0)
    l, d = 5, 7
    shared = torch.randn(2, l, d)  # two families
    ranks = [1, 3, 2, 1]  # four tasks of mixed ranks
    us = [torch.randn(l, r) for r in ranks]
    vs = [torch.randn(d, r) for r in ranks]
    rmax = max(ranks)
    u_table = torch.zeros(len(ranks), l, rmax)
    v_table = torch.zeros(len(ranks), d, rmax)
    for k, (u, v) in enumerate(zip(us, vs)):
        u_table[k, :, : u.shape[1]] = u
        v_table[k, :, : v.shape[1]] = v
    family_index = torch.tensor([0, 1, 1, 0, 1])
    task_index = torch.tensor([0, 1, 2, 3, 1])

    out = compose_rows(shared, u_table, v_table, family_index, task_index)

    assert out.shape == (5, l, d)
    for row, (f, t) in enumerate(zip(family_index.tolist(), task_index.tolist())):
        expected = shared[f] * (us[t] @ vs[t].T)
        torch.testing.assert_close(out[row], expected, rtol=0, atol=1e-6)


def test_compose_broadcasts_one_shared_prompt():
    shared = torch.randn(4, 3)
    u, v = torch.randn(2, 4, 1), torch.randn(2, 3, 1)
    out = compose(shared, u, v)
    torch.testing.assert_close(out[1], shared * (u[1] @ v[1].T))


def test_ones_factors_give_the_shared_prompt_back():
    shared = torch.randn(4, 3)
    out = compose(shared, torch.ones(1, 4, 1), torch.ones(1, 3, 1))
    assert torch.equal(out[0], shared)


def test_inject_prepends_prompt_and_extends_mask():
    prompts = torch.randn(2, 3, 4)
    embeds = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    x, m = inject(prompts, embeds, mask)
    assert x.shape == (2, 8, 4) and m.shape == (2, 8)
    assert torch.equal(x[:, :3], prompts) and torch.equal(x[:, 3:], embeds)
    assert m[:, :3].all() and torch.equal(m[:, 3:], mask)


def test_inject_refuses_mismatched_width():
    with pytest.raises(ValueError, match="do not fit"):
        inject(torch.randn(2, 3, 4), torch.randn(2, 5, 6), torch.ones(2, 5))

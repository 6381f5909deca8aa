"""Dynamic fusion (eqs. 1-2) against a naive per-(user, item) computation."""

from __future__ import annotations

import math

import pytest
import torch

from missrec.model.fusion import Concentration, fuse_representations, fuse_scores, modality_scores


def naive(u: torch.Tensor, x: torch.Tensor, present: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 1 then <u, v>, one (user, item) pair at a time. x: [M, N, d], present [M, N]."""
    b, n = u.shape[0], x.shape[1]
    out = torch.empty(b, n, dtype=u.dtype)
    for i in range(b):
        for k in range(n):
            mods = [m for m in range(x.shape[0]) if present[m, k]]
            if not mods:
                out[i, k] = -math.inf
                continue
            w = [math.exp(alpha * float(u[i] @ x[m, k])) for m in mods]
            v = sum(wm * x[m, k] for wm, m in zip(w, mods)) / sum(w)
            out[i, k] = u[i] @ v
    return out


@pytest.mark.parametrize("n_mod", [2, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.7, 3.0])
def test_fuse_scores_matches_eq1(n_mod: int, alpha: float) -> None:
    g = torch.Generator().manual_seed(n_mod)
    u = torch.randn(4, 5, generator=g, dtype=torch.float64)
    x = torch.randn(n_mod, 7, 5, generator=g, dtype=torch.float64)
    present = torch.rand(n_mod, 7, generator=g) < 0.6
    present[:, 0] = True
    present[:, 1] = False  # an item with no modality
    present[1:, 2] = False  # an item with only the first modality
    present[0, 3] = False
    fused = fuse_scores(modality_scores(u, x), present, alpha)
    torch.testing.assert_close(fused, naive(u, x, present, alpha))
    stacked = fuse_scores(torch.stack(modality_scores(u, x)), present, alpha)
    torch.testing.assert_close(stacked, fused)
    assert torch.isinf(fused[:, 1]).all() and (fused[:, 1] < 0).all()


def test_mean_at_zero_and_max_as_alpha_grows() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 6, generator=g, dtype=torch.float64)
    present = torch.ones(2, 6, dtype=torch.bool)
    torch.testing.assert_close(fuse_scores(s, present, 0.0), s.mean(0))
    gaps = [float((fuse_scores(s, present, a) - s.max(0).values).abs().max()) for a in (1, 10, 100, 1e4)]
    assert all(b <= a for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-3


def test_missing_modality_gets_no_weight_even_with_nan_free_garbage() -> None:
    s = torch.tensor([[[1.0, 2.0]], [[1e6, -3.0]]])  # modality 1 of item 0 is missing
    present = torch.tensor([[True, True], [False, True]])
    out = fuse_scores(s, present, 1.0)
    assert out[0, 0] == 1.0
    w = torch.sigmoid(torch.tensor(2.0 - -3.0))
    torch.testing.assert_close(out[0, 1], w * 2.0 + (1 - w) * -3.0)


def test_gradients_finite_with_empty_items() -> None:
    s = torch.randn(2, 3, 4, requires_grad=True)
    present = torch.tensor([[True, False, True, False], [True, True, False, False]])
    out = fuse_scores(s, present, torch.tensor(2.0, requires_grad=True))
    out[:, :3].sum().backward()
    assert torch.isfinite(s.grad).all()
    assert (s.grad[1, :, 2] == 0).all() and (s.grad[0, :, 1] == 0).all()


def test_fuse_representations_agrees_with_scores() -> None:
    g = torch.Generator().manual_seed(9)
    u = torch.randn(6, 5, generator=g, dtype=torch.float64)
    x = torch.randn(6, 2, 5, generator=g, dtype=torch.float64)
    present = torch.rand(6, 2, generator=g) < 0.7
    present[:, 0] = True
    v = fuse_representations(u, x, present, 1.3)
    diag = (u * v).sum(1)
    ref = torch.stack([naive(u[i:i + 1], x[i].unsqueeze(1), present[i].unsqueeze(1), 1.3)[0, 0]
                       for i in range(6)])
    torch.testing.assert_close(diag, ref)


def test_concentration() -> None:
    a = Concentration(0.8)
    torch.testing.assert_close(a(), torch.tensor(0.8))
    assert a.raw.requires_grad
    fixed = Concentration(0.0, learnable=False)
    assert float(fixed()) == 0.0 and not list(fixed.parameters())
    with pytest.raises(ValueError):
        Concentration(0.0)
    with pytest.raises(ValueError):
        Concentration(-1.0, learnable=False)
    # unconstrained (the official fusion_factor): α = raw, may start at 0 and turn negative
    free = Concentration(0.0, constrained=False)
    assert float(free().detach()) == 0.0
    free().backward()
    torch.testing.assert_close(free.raw.grad, torch.tensor(1.0))
    with torch.no_grad():
        free.raw -= 0.5
    assert float(free().detach()) == -0.5
    with pytest.raises(ValueError):
        Concentration(-1.0, learnable=False, constrained=False)

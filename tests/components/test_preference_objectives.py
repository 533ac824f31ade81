"""Tests of the preference objectives against their formulas, computed independently with `math`."""

import math
import types

import pytest
import torch

from reparamdsl.components.preference import objectives
from reparamdsl.components.preference.objectives import PairLogps

CHOSEN = [-12.0, -30.0, -7.5]
REJECTED = [-15.0, -22.0, -9.0]
CHOSEN_LENGTHS = [4.0, 10.0, 3.0]
REJECTED_LENGTHS = [5.0, 8.0, 2.0]
REF_CHOSEN = [-13.0, -29.0, -8.0]
REF_REJECTED = [-14.0, -23.5, -8.5]


def pairs(chosen=CHOSEN, rejected=REJECTED, chosen_lengths=CHOSEN_LENGTHS, rejected_lengths=REJECTED_LENGTHS,
          ref_chosen=REF_CHOSEN, ref_rejected=REF_REJECTED) -> PairLogps:
    def tensor(values):
        return torch.tensor(values, dtype=torch.float64)

    return PairLogps(tensor(chosen), tensor(rejected), tensor(chosen_lengths), tensor(rejected_lengths),
                     tensor(ref_chosen), tensor(ref_rejected))


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def rows():
    return zip(CHOSEN, REJECTED, CHOSEN_LENGTHS, REJECTED_LENGTHS, REF_CHOSEN, REF_REJECTED)


def test_simpo_matches_formula():
    beta, gamma, smoothing = 2.0, 0.7, 0.1
    expected = mean(
        -(1 - smoothing) * log_sigmoid(beta * (c / lc - r / lr) - gamma)
        - smoothing * log_sigmoid(-(beta * (c / lc - r / lr) - gamma))
        for c, r, lc, lr, _, _ in rows())

    output = objectives.simpo(pairs(), beta=beta, gamma=gamma, label_smoothing=smoothing)

    assert output.loss.item() == pytest.approx(expected, rel=1e-12)
    assert output.chosen_rewards.tolist() == pytest.approx([beta * c / lc for c, _, lc, _, _, _ in rows()])


def test_simpo_hinge_matches_formula():
    beta, gamma = 1.5, 0.4
    expected = mean(max(0.0, 1 - (beta * (c / lc - r / lr) - gamma)) for c, r, lc, lr, _, _ in rows())

    output = objectives.simpo(pairs(), beta=beta, gamma=gamma, loss_type="hinge")

    assert output.loss.item() == pytest.approx(expected, rel=1e-12)


def test_simpo_equal_logps_give_softplus_gamma():
    same = pairs(rejected=CHOSEN, rejected_lengths=CHOSEN_LENGTHS)

    for gamma in (0.0, 0.5, 3.0):
        loss = objectives.simpo(same, beta=2.0, gamma=gamma).loss.item()
        assert loss == pytest.approx(math.log1p(math.exp(gamma)), rel=1e-12)
    assert objectives.simpo(same, beta=2.0, gamma=0.0).loss.item() == pytest.approx(math.log(2), rel=1e-12)


def test_simpo_swap_flips_margin_and_loss_difference():
    beta = 2.0
    forward = objectives.simpo(pairs(), beta=beta, gamma=0.0)
    swapped = objectives.simpo(pairs(chosen=REJECTED, rejected=CHOSEN, chosen_lengths=REJECTED_LENGTHS,
                                     rejected_lengths=CHOSEN_LENGTHS), beta=beta, gamma=0.0)

    margins = forward.chosen_rewards - forward.rejected_rewards
    swapped_margins = swapped.chosen_rewards - swapped.rejected_rewards
    assert torch.allclose(swapped_margins, -margins)

    # softplus(-m) - softplus(m) = -m for every pair, so the mean loss moves by the mean margin.
    assert (swapped.loss - forward.loss).item() == pytest.approx(margins.mean().item(), rel=1e-12)


def test_simpo_sft_term_only_when_asked():
    beta, gamma = 2.0, 1.0
    plain = objectives.simpo(pairs(), beta=beta, gamma=gamma)
    with_sft = objectives.simpo(pairs(), beta=beta, gamma=gamma, sft_weight=0.3)

    assert "sft_loss" not in plain.metrics
    expected_sft = mean(-c / lc for c, _, lc, _, _, _ in rows())
    assert (with_sft.loss - plain.loss).item() == pytest.approx(0.3 * expected_sft, rel=1e-12)


def test_dpo_matches_formula():
    beta, smoothing = 0.1, 0.2
    expected = []
    for c, r, _, _, rc, rr in rows():
        z = beta * ((c - rc) - (r - rr))
        expected.append(-(1 - smoothing) * log_sigmoid(z) - smoothing * log_sigmoid(-z))

    output = objectives.dpo(pairs(), beta=beta, label_smoothing=smoothing)

    assert output.loss.item() == pytest.approx(mean(expected), rel=1e-12)
    assert output.rejected_rewards.tolist() == pytest.approx([beta * (r - rr) for _, r, _, _, _, rr in rows()])


def test_ipo_matches_formula():
    beta = 0.25
    expected = mean(((c - rc) / lc - (r - rr) / lr - 1 / (2 * beta)) ** 2 for c, r, lc, lr, rc, rr in rows())

    assert objectives.ipo(pairs(), beta=beta).loss.item() == pytest.approx(expected, rel=1e-12)


def test_hinge_matches_formula():
    beta = 0.5
    expected = mean(max(0.0, 1 - beta * ((c - rc) - (r - rr))) for c, r, _, _, rc, rr in rows())

    assert objectives.hinge(pairs(), beta=beta).loss.item() == pytest.approx(expected, rel=1e-12)


def test_robust_dpo_matches_formula():
    beta, epsilon = 0.3, 0.2
    expected = []
    for c, r, _, _, rc, rr in rows():
        z = beta * ((c - rc) - (r - rr))
        expected.append((-(1 - epsilon) * log_sigmoid(z) + epsilon * log_sigmoid(-z)) / (1 - 2 * epsilon))

    assert objectives.robust_dpo(pairs(), beta=beta, epsilon=epsilon).loss.item() == pytest.approx(
        mean(expected), rel=1e-12)


def test_robust_dpo_at_zero_epsilon_is_dpo():
    assert objectives.robust_dpo(pairs(), beta=0.3, epsilon=0.0).loss.item() == pytest.approx(
        objectives.dpo(pairs(), beta=0.3).loss.item(), rel=1e-12)


def test_cpo_matches_formula():
    beta, alpha = 0.1, 0.7
    preference = mean(-log_sigmoid(beta * (c - r)) for c, r, _, _, _, _ in rows())
    nll = -sum(CHOSEN) / sum(CHOSEN_LENGTHS)

    output = objectives.cpo(pairs(), beta=beta, alpha=alpha)

    assert output.loss.item() == pytest.approx(preference + alpha * nll, rel=1e-12)
    assert "nll_loss" not in objectives.cpo(pairs(), beta=beta, alpha=0.0).metrics


def test_orpo_matches_formula():
    beta = 0.2
    odds_terms = []
    for c, r, lc, lr, _, _ in rows():
        average_c, average_r = c / lc, r / lr
        log_odds = (average_c - average_r) - (math.log(1 - math.exp(average_c)) - math.log(1 - math.exp(average_r)))
        odds_terms.append(log_sigmoid(log_odds))
    nll = -sum(CHOSEN) / sum(CHOSEN_LENGTHS)

    output = objectives.orpo(pairs(), beta=beta)

    assert output.loss.item() == pytest.approx(nll - beta * mean(odds_terms), rel=1e-10)


def test_rdpo_matches_formula():
    beta, alpha = 0.1, 0.05
    expected = mean(-log_sigmoid(beta * ((c - rc) - (r - rr)) + alpha * (lc - lr))
                    for c, r, lc, lr, rc, rr in rows())

    assert objectives.rdpo(pairs(), beta=beta, alpha=alpha).loss.item() == pytest.approx(expected, rel=1e-12)


def test_sigmoid_norm_matches_formula():
    beta = 1.0
    free = pairs(ref_chosen=[0.0] * 3, ref_rejected=[0.0] * 3)
    expected = mean(-log_sigmoid(beta * (c / lc - r / lr)) for c, r, lc, lr, _, _ in rows())

    assert objectives.sigmoid_norm(free, beta=beta).loss.item() == pytest.approx(expected, rel=1e-12)
    assert objectives.sigmoid_norm(free, beta=beta).loss.item() == pytest.approx(
        objectives.simpo(free, beta=beta, gamma=0.0).loss.item(), rel=1e-12)


def test_kto_matches_formula():
    beta = 0.5
    logratios = [0.4, -1.2, 2.0, 0.1]
    kl_logratios = [0.3, 0.5, -0.2, 0.6]
    desirable = [True, False, True, False]
    weights = (1.0, 1.5)
    kl = max(mean(kl_logratios), 0.0)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = mean(weights[0] * (1 - sigmoid(beta * (z - kl))) if good else weights[1] * (1 - sigmoid(beta * (kl - z)))
                    for z, good in zip(logratios, desirable))

    loss, metrics = objectives.kto(torch.tensor(logratios, dtype=torch.float64),
                                   torch.tensor(kl_logratios, dtype=torch.float64),
                                   torch.tensor(desirable), beta, *weights)

    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert metrics["kl"].item() == pytest.approx(kl, rel=1e-12)
    assert metrics["rewards/chosen"].item() == pytest.approx(beta * (0.4 + 2.0) / 2, rel=1e-12)


def test_kto_kl_estimate_clamped_at_zero():
    _, metrics = objectives.kto(torch.zeros(2), torch.tensor([-1.0, -2.0]), torch.tensor([True, False]), 0.1)

    assert metrics["kl"].item() == 0.0


def test_average_objectives_ignore_repeated_tokens():
    # Repeating every response's per-token log-probs k times multiplies sums and lengths by k.
    k = 3
    repeated = pairs(chosen=[k * c for c in CHOSEN], rejected=[k * r for r in REJECTED],
                     chosen_lengths=[k * n for n in CHOSEN_LENGTHS], rejected_lengths=[k * n for n in REJECTED_LENGTHS],
                     ref_chosen=[k * c for c in REF_CHOSEN], ref_rejected=[k * r for r in REF_REJECTED])

    assert objectives.simpo(repeated, beta=2.0, gamma=0.5).loss.item() == pytest.approx(
        objectives.simpo(pairs(), beta=2.0, gamma=0.5).loss.item(), rel=1e-12)
    assert objectives.ipo(repeated, beta=0.2).loss.item() == pytest.approx(
        objectives.ipo(pairs(), beta=0.2).loss.item(), rel=1e-12)

    # Summed rewards scale with the repetition instead.
    assert torch.allclose(objectives.dpo(repeated, beta=0.1).chosen_rewards,
                          k * objectives.dpo(pairs(), beta=0.1).chosen_rewards)
    assert objectives.dpo(repeated, beta=0.1).loss.item() != pytest.approx(
        objectives.dpo(pairs(), beta=0.1).loss.item())


# ---- cross-checks against TRL's loss functions ---------------------------------------------------


def _trl_self(**fields):
    return types.SimpleNamespace(accelerator=types.SimpleNamespace(device=torch.device("cpu")), **fields)


def test_simpo_and_cpo_match_trl():
    cpo_module = pytest.importorskip("trl.experimental.cpo.cpo_trainer")
    cpo_loss = cpo_module.CPOTrainer.cpo_loss
    p = pairs()

    trl_simpo = _trl_self(alpha=0.0, loss_type="simpo", simpo_gamma=0.8, beta=2.0, label_smoothing=0.1)
    losses, chosen_rewards, _ = cpo_loss(trl_simpo, p.chosen_avg, p.rejected_avg)
    ours = objectives.simpo(p, beta=2.0, gamma=0.8, label_smoothing=0.1)
    assert ours.loss.item() == pytest.approx(losses.mean().item(), rel=1e-12)
    assert torch.allclose(ours.chosen_rewards, chosen_rewards)

    trl_sigmoid = _trl_self(alpha=0.0, loss_type="sigmoid", beta=0.1, label_smoothing=0.0, simpo_gamma=0.0)
    losses, _, _ = cpo_loss(trl_sigmoid, p.chosen, p.rejected)
    ours = objectives.cpo(p, beta=0.1, alpha=0.0)
    assert ours.loss.item() == pytest.approx(losses.mean().item(), rel=1e-12)


def test_orpo_matches_trl():
    orpo_module = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
    p = pairs()

    losses, _, _, _, _ = orpo_module.ORPOTrainer.odds_ratio_loss(_trl_self(beta=0.2), p.chosen_avg, p.rejected_avg)
    ours = objectives.orpo(p, beta=0.2)

    assert ours.loss.item() == pytest.approx((p.chosen_nll() - losses.mean()).item(), rel=1e-6)

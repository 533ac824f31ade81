"""Flow and Gaussian policies: path log-density, squashing, gates and per-sample decoding."""

import math

import pytest
import torch
from torch import distributions as dist

from reparamdsl.components.rl.layers import squash_log_det
from reparamdsl.components.rl.policies.flow import FlowPolicy
from reparamdsl.components.rl.policies.gaussian import GaussianPolicy
from reparamdsl.components.rl.policies.velocity import DecodedVelocity, GatedVelocity, MLPVelocity

S, D, T = 3, 2, 8


def make_flow(velocity: str, steps: int = 3, scale=(2.0, 0.5)) -> FlowPolicy:
    torch.manual_seed(0)
    field = {
        "mlp": lambda: MLPVelocity(S, D, T, 16, 2),
        "gated": lambda: GatedVelocity(S, D, T, 16, 2, 5.0),
        "decoded": lambda: DecodedVelocity(S, D, T, 16, 4, 2, 3),
    }[velocity]()
    return FlowPolicy(S, D, scale, field, steps, T, 16, -2.0, 0.0)


@pytest.mark.parametrize("velocity", ["mlp", "gated", "decoded"])
def test_flow_log_prob_matches_distributions(velocity):
    policy = make_flow(velocity)
    obs = torch.randn(5, S)
    rollout = policy.rollout(obs)
    path, std = rollout["path"], rollout["log_std"].exp()

    expected = dist.Normal(0.0, 1.0).log_prob(path[0]).sum(-1)
    for i in range(policy.steps):
        time_features = policy.time_embedding(torch.full((5,), i / policy.steps))
        mean = path[i] + policy.velocity(obs, path[i], time_features) / policy.steps
        expected = expected + dist.Normal(mean, std).log_prob(path[i + 1]).sum(-1)
    squash = dist.ComposeTransform([dist.TanhTransform(), dist.AffineTransform(0.0, policy.action_scale)])
    expected = expected - squash.log_abs_det_jacobian(path[-1], squash(path[-1])).sum(-1)

    torch.testing.assert_close(rollout["log_prob"], expected, rtol=1e-5, atol=1e-4)


def test_flow_one_step_is_tanh_gaussian():
    policy = make_flow("gated", steps=1, scale=(1.0, 1.0))
    with torch.no_grad():
        policy.velocity.gate[-1].bias.fill_(60.0)  # sigmoid(60) == 1 in float32
        first = policy.velocity.candidate[0].weight
        first[:, S:S + D] = 0.0  # the candidate ignores A_0
    obs, noise = torch.randn(4, S), torch.randn(2, 4, D)

    action, log_prob = policy(obs, noise)

    mean = policy.velocity.candidate(torch.cat([obs, torch.zeros(4, D), policy.time_embedding(torch.zeros(4))], -1))
    std = policy.noise_log_std(obs).exp()
    gaussian = dist.TransformedDistribution(dist.Normal(mean, std), [dist.TanhTransform()])
    expected_action = torch.tanh(mean + std * noise[1])
    expected = gaussian.log_prob(expected_action.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    prior = dist.Normal(0.0, 1.0).log_prob(noise[0]).sum(-1)
    torch.testing.assert_close(action, expected_action)
    torch.testing.assert_close(log_prob - prior, expected, rtol=1e-4, atol=1e-3)


def test_box_scale_shifts_log_prob():
    unit = make_flow("gated", scale=(1.0, 1.0))
    wide = make_flow("gated", scale=(2.0, 2.0))
    obs, noise = torch.randn(6, S), torch.randn(unit.steps + 1, 6, D)

    _, unit_log_prob = unit(obs, noise)
    _, wide_log_prob = wide(obs, noise)

    torch.testing.assert_close(wide_log_prob, unit_log_prob - D * math.log(2.0))


def test_squash_log_det_matches_direct_form():
    x = torch.linspace(-5.0, 5.0, 101, dtype=torch.float64).unsqueeze(-1)
    direct = torch.log(1.0 - torch.tanh(x).pow(2)).sum(-1)
    torch.testing.assert_close(squash_log_det(x), direct)
    assert torch.isfinite(squash_log_det(torch.tensor([[40.0, -40.0]]))).all()


def test_gated_velocity_gate_open_at_init():
    policy = make_flow("gated")
    inputs = torch.cat([torch.randn(7, S), torch.randn(7, D), torch.randn(7, T)], -1)
    gate = torch.sigmoid(policy.velocity.gate(inputs))
    torch.testing.assert_close(gate, torch.full_like(gate, 1.0 / (1.0 + math.exp(-5.0))))


def test_decoded_velocity_per_sample():
    policy = make_flow("decoded")
    obs, action, time_features = torch.randn(9, S), torch.randn(9, D), torch.randn(9, T)
    permutation = torch.randperm(9)

    velocity = policy.velocity(obs, action, time_features)
    permuted = policy.velocity(obs[permutation], action[permutation], time_features[permutation])

    torch.testing.assert_close(permuted, velocity[permutation])
    alone = policy.velocity(obs[:1], action[:1], time_features[:1])
    torch.testing.assert_close(alone, velocity[:1], rtol=1e-5, atol=1e-6)


def test_flow_noise_differs_across_steps_and_calls():
    policy = make_flow("mlp")
    obs = torch.randn(4, S)
    first, second = policy.rollout(obs), policy.rollout(obs)
    increments = first["path"][1:] - first["means"]
    assert not torch.allclose(increments[0], increments[1])
    assert not torch.allclose(first["path"], second["path"])


@pytest.mark.parametrize("policy", [make_flow("gated"), GaussianPolicy(S, D, (2.0, 0.5), 16, 2, -5.0, 2.0)])
def test_actions_inside_unit_box(policy):
    obs = 50.0 * torch.randn(256, S)
    action, log_prob = policy(obs)
    assert action.abs().max() <= 1.0
    assert policy.act(obs).abs().max() <= 1.0
    assert torch.isfinite(log_prob).all()


def test_gaussian_log_prob_matches_distributions():
    torch.manual_seed(1)
    policy = GaussianPolicy(S, D, (2.0, 0.5), 16, 2, -5.0, 2.0)
    obs, noise = torch.randn(5, S), torch.randn(5, D)
    action, log_prob = policy(obs, noise)

    mean, log_std = policy.distribution_params(obs)
    pre_tanh = mean + log_std.exp() * noise
    squash = dist.ComposeTransform([dist.TanhTransform(), dist.AffineTransform(0.0, policy.action_scale)])
    expected = dist.Normal(mean, log_std.exp()).log_prob(pre_tanh).sum(-1) \
        - squash.log_abs_det_jacobian(pre_tanh, squash(pre_tanh)).sum(-1)
    torch.testing.assert_close(log_prob, expected, rtol=1e-5, atol=1e-4)


def a0_gradient_norm(policy: FlowPolicy, obs: torch.Tensor) -> float:
    noise = torch.zeros(policy.steps + 1, obs.shape[0], D)
    noise[0] = torch.randn(obs.shape[0], D)
    noise.requires_grad_(True)
    action, _ = policy(obs, noise)
    (grad,) = torch.autograd.grad(torch.atanh(action.clamp(-0.999, 0.999)).sum(), noise)
    return grad[0].norm(dim=-1).mean().item()


def test_gated_gradient_bounded_in_steps():
    torch.manual_seed(3)
    obs = torch.randn(64, S)
    norms = {}
    for steps in (1, 10):
        torch.manual_seed(4)
        policy = FlowPolicy(S, D, (1.0, 1.0), GatedVelocity(S, D, T, 64, 2, 5.0), steps, T, 16, -2.0, 0.0)
        norms[steps] = a0_gradient_norm(policy, obs)
    # With g near 1, each step contracts A_i by about (1 - dt), so the gradient cannot compound.
    assert norms[10] < 2.0 * norms[1] + 1.0


def test_flow_path_density_matches_monte_carlo_estimate():
    # d = 1, K = 2: the path (A_0, A_1, env action) lives in R^3, so the fraction of
    # sampled paths that land in a small cube around a point, divided by the
    # cube's volume, estimates its density without using any of the policy's
    # log-density code.
    torch.manual_seed(5)
    scale = 2.0
    policy = FlowPolicy(S, 1, (scale,), MLPVelocity(S, 1, T, 16, 2), 2, T, 16, -1.5, -0.5)
    samples, half_width = 2_000_000, 0.06
    obs = torch.randn(1, S).expand(samples, S)

    with torch.no_grad():
        rollout = policy.rollout(obs)
    path = rollout["path"][:, :, 0]
    points = torch.stack([path[0], path[1], scale * torch.tanh(path[2])], dim=-1)

    for probe in (0, 1, 2):
        inside = ((points - points[probe]).abs() <= half_width).all(dim=-1)
        estimate = inside.float().mean() / (2 * half_width) ** 3
        exact = rollout["log_prob"][probe].exp()
        assert inside.sum() > 400, "probe point too rare for a stable estimate"
        torch.testing.assert_close(estimate, exact, rtol=0.12, atol=0.0)

"""Twin (or larger) Q ensembles evaluated in one vmapped call."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from reparamdsl.components.rl.layers import mlp
from reparamdsl.components.rl.policies.base import env_dims


class QEnsemble(nn.Module):
    """E independent Q(s, a) MLPs whose weights are stacked along a leading ensemble axis.

    The stacked tensors are this module's parameters (named like `0__weight`
    for the member's `0.weight`), so an optimizer or `functional_call` gets
    one tensor per layer. `forward` runs all members with `torch.func.vmap`.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden: int, depth: int, ensemble: int, layer_norm: bool):
        super().__init__()
        members = [mlp(obs_dim + action_dim, hidden, depth, 1, layer_norm=layer_norm) for _ in range(ensemble)]
        stacked, _ = stack_module_state(members)
        self.member_names = list(stacked)
        for name, value in stacked.items():
            self.register_parameter(name.replace(".", "__"), nn.Parameter(value))
        # A weightless template for functional_call; kept out of the module tree so it never stores state.
        object.__setattr__(self, "template", copy.deepcopy(members[0]).to("meta"))
        self.ensemble = ensemble

    def member_params(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name.replace(".", "__")) for name in self.member_names}

    def member(self, index: int) -> nn.Module:
        """Return a standalone copy of member `index` (for tests and inspection)."""
        module = copy.deepcopy(self.template).to_empty(device=self.member_params()[self.member_names[0]].device)
        module.load_state_dict({name: value[index].detach() for name, value in self.member_params().items()})
        return module

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Return Q values (E, B)."""
        inputs = torch.cat([obs, action], dim=-1)

        def q_value(params, x):
            return functional_call(self.template, params, (x,)).squeeze(-1)

        return vmap(q_value, in_dims=(0, None))(self.member_params(), inputs)


def build(params: dict, ctx) -> QEnsemble:
    obs_dim, action_dim, _ = env_dims(params["env"], ctx)
    return QEnsemble(obs_dim, action_dim, params["hidden"], params["depth"], params["ensemble"], params["layer_norm"])

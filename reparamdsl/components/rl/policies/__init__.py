"""Actors for SAC: the tanh-squashed Gaussian and the flow policy with its velocity fields."""

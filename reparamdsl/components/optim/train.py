"""The `train` declaration builds nothing: the runtime reads its plan parameters."""


def build(params: dict, ctx) -> dict:
    return params

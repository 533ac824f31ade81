"""A torchrun worker for the distributed tests: train a program, then save this rank's model state.

Usage: python -m torch.distributed.run --nproc-per-node 2 tests/runtime/ddp_worker.py PROGRAM OUT [KEY=VALUE...]
Writes OUT/run (rank 0's run folder) and OUT/rank{R}.safetensors for every rank R.
"""

from __future__ import annotations

import os
import sys

from safetensors.torch import save_file

import reparamdsl as rp
from reparamdsl.runtime.distributed import init_from_environment
from reparamdsl.runtime.session import run_program


def main() -> None:
    program_path, out_dir, *overrides = sys.argv[1:]
    distributed, device = init_from_environment("cpu")
    program = rp.compile_file(program_path, overrides=dict(o.split("=", 1) for o in overrides), device=device)
    try:
        run_program(program, out_dir=os.path.join(out_dir, "run"), progress=False, distributed=distributed)
        state = {name: value.detach().contiguous().clone() for name, value in program.model.state_dict().items()}
        save_file(state, os.path.join(out_dir, f"rank{distributed.rank}.safetensors"))
    finally:
        distributed.close()


if __name__ == "__main__":
    main()

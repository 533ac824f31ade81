"""Embed the reparamdsl compiler in another tool.

Compiles a program from a string with overrides, inspects the plan and the
model, runs a few compiled steps by hand, then trains with `run()` and reads
the metrics. Run it from the repository root:

    python examples/embed_compiler.py
"""

import json
import tempfile

import reparamdsl as rp

PROGRAM = """
let width = 64

data corpus = text {
    source = "python-stdlib"
    context = 64
    max_files = 40
}

model lm = llama {
    vocab = corpus.vocab_size
    width = width
    depth = 2
    heads = 4
    context = corpus.context
}

objective loss = next_token(lm, corpus)

train {
    steps = 20
    batch = 8
    optimizer = adamw(lr = 3e-3)
    schedule = cosine(warmup = 5 steps)
    eval_every = 10 steps
    eval_batches = 4
    compile_backend = aot_eager
}
"""


def main() -> None:
    # Overrides take Python values or source text in the language's syntax.
    program = rp.compile_source(PROGRAM, "embedded.rp", overrides={"width": 48, "train.steps": 12}, device="cpu")

    print("plan hash:", program.plan.hash)
    print("model width:", program.plan.get("lm").params["width"])
    print("parameters:", program.parameter_counts())
    print(program.model)

    # Drive the compiled step directly with the task's own batches.
    batches = program.task.train_batches(batch_size=8, seed=program.seed)
    for _ in range(2):
        metrics = program.train_step(next(batches))
        print("manual step loss:", float(metrics["train/loss"]))

    # Or let the runtime train the schedule in a run folder.
    another = rp.compile_source(PROGRAM, "embedded.rp", overrides={"train.steps": 12}, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        final = another.run(out_dir=folder, progress=False)
        with open(f"{folder}/metrics.jsonl", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle]
    print("final metrics:", {k: round(v, 4) for k, v in final.items() if k.startswith("eval/")})
    print("metric records written:", len(records))


if __name__ == "__main__":
    main()

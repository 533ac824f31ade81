"""The `rpc` command line: exit codes, diagnostics without tracebacks, dry runs."""

import os
import subprocess
import sys

from click.testing import CliRunner

from reparamdsl.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LM_PROGRAM = os.path.join(ROOT, "programs", "lm_adamw.rp")


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_check_valid_program_exits_zero():
    result = invoke("check", LM_PROGRAM)

    assert result.exit_code == 0
    assert "ok, plan" in result.output


def test_check_malformed_program_exits_one_without_traceback(tmp_path):
    path = tmp_path / "bad.rp"
    path.write_text("train {\n  steps = -3\n  precison = bf16\n}\n")

    result = invoke("check", str(path))

    assert result.exit_code == 1
    assert f"{path}:2:11: error: invalid value for 'steps'" in result.output
    assert f"{path}:3:3: error: unknown parameter 'precison'" in result.output
    assert "Traceback" not in result.output


def test_usage_error_exits_two():
    result = invoke("run", LM_PROGRAM, "not-an-override")

    assert result.exit_code == 2
    assert "key=value" in result.output


def test_missing_file_exits_one():
    result = invoke("check", "/nonexistent/prog.rp")

    assert result.exit_code == 1
    assert "program file not found" in result.output


def test_dry_run_prints_plan_and_counts():
    result = invoke("run", LM_PROGRAM, "lm.width=32", "lm.depth=1", "corpus.max_files=8", "--dry-run", "--device", "cpu")

    assert result.exit_code == 0
    assert '"format": "reparamdsl.plan/1"' in result.output
    assert "# parameters:" in result.output


def test_dry_run_lists_sweep_points():
    result = invoke("run", LM_PROGRAM, "lm.width=sweep(32, 64)", "lm.depth=1", "corpus.max_files=8", "--dry-run",
                    "--device", "cpu")

    assert result.exit_code == 0
    assert result.output.count("# sweep point:") == 2


def test_components_lists_parameters():
    result = invoke("components", "train", "train")

    assert result.exit_code == 0
    assert "steps: steps >= 1, default 1000." in result.output


def test_check_does_not_import_torch():
    code = ("import sys\n"
            "from reparamdsl.cli.main import main\n"
            f"try:\n    main(['check', '-q', {LM_PROGRAM!r}])\n"
            "except SystemExit as exit:\n    assert exit.code in (0, None), exit.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr


def test_compile_writes_plan_and_report(tmp_path):
    import json

    out = tmp_path / "build"
    result = invoke("compile", LM_PROGRAM, "lm.width=32", "lm.depth=1", "corpus.max_files=8", "corpus.context=32",
                    "train.batch=2", "-o", str(out), "--device", "cpu")

    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    plan = json.loads((out / "plan.json").read_text())
    assert report["plan_hash"] == plan["hash"]
    assert report["graph_breaks"] == 0
    assert report["graphs"] == 1
    assert report["parameters"]["trainable"] > 0
    # Forward + backward of a 1-layer width-32 model on 2 x 32 tokens: at least 6 FLOPs per parameter per token.
    assert report["flops_per_step"] >= 6 * 2 * 32 * (report["parameters"]["trainable"] - 2 * 257 * 32)
    # One row is traced and the count scaled to the batch of 2.
    assert report["traced_rows"] == 1


def test_shipped_programs_are_formatted():
    import glob

    paths = sorted(glob.glob(os.path.join(ROOT, "programs", "**", "*.rp"), recursive=True))
    result = invoke("fmt", "--check", *paths)

    assert result.exit_code == 0, result.output


def test_run_of_library_file_exits_one(tmp_path):
    path = tmp_path / "lib.rp"
    path.write_text("# only comments\n")

    result = invoke("run", str(path))

    assert result.exit_code == 1
    assert "declares no objective: nothing to train" in result.output


def test_invalid_device_is_usage_error():
    for device in ("tpu", "", "cuda:7"):
        result = invoke("run", LM_PROGRAM, "--device", device, "--dry-run")
        assert result.exit_code == 2, (device, result.output)
        assert "device" in result.output


def test_resume_with_override_in_file_position_is_usage_error(tmp_path):
    result = invoke("run", "--resume", str(tmp_path), "train.steps=12")

    assert result.exit_code == 2
    assert "looks like an override" in result.output


def test_compile_into_device_file_is_usage_error():
    result = invoke("compile", LM_PROGRAM, "-o", "/dev/null", "--no-trace", "--device", "cpu")

    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_compile_into_a_file_is_usage_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("")

    result = invoke("compile", LM_PROGRAM, "-o", str(target), "--no-trace", "--device", "cpu")

    assert result.exit_code == 2
    assert "is a file" in result.output


def test_bad_data_row_is_placed_at_its_declaration(tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": \n')
    program = tmp_path / "p.rp"
    program.write_text(
        'data prefs = preference { path = "pairs.jsonl" max_length = 64 }\n'
        "model policy = llama { vocab = prefs.vocab_size width = 32 depth = 1 heads = 2 context = 64 }\n"
        "objective loss = simpo(policy, prefs)\n"
        "train { steps = 1 batch = 1 compile = false }\n")

    result = invoke("run", str(program), "--device", "cpu", "--out", str(tmp_path / "run"))

    assert result.exit_code == 1, result.output
    assert f"{program}:1:6: error:" in result.output
    assert "pairs.jsonl:2" in result.output
    assert "Traceback" not in result.output


def test_explain_program_without_objective_exits_one(tmp_path):
    path = tmp_path / "empty.rp"
    path.write_text("")

    result = invoke("explain", str(path), "--device", "cpu")

    assert result.exit_code == 1
    assert f"{path} declares no objective" in result.output


def test_explain_unknown_backend_is_usage_error():
    result = invoke("explain", LM_PROGRAM, "--backend", "nosuch")

    assert result.exit_code == 2
    assert "'nosuch' is not one of 'inductor', 'aot_eager', 'eager'" in result.output


def test_explain_backends_match_train_spec():
    from reparamdsl.cli.explain_cmd import explain
    from reparamdsl.semantics.registry import default_registry

    train = default_registry(entry_points=False).get("train", "train")
    param = next(param for param in train.params if param.name == "compile_backend")
    option = next(option for option in explain.params if option.name == "backend")

    assert tuple(option.type.choices) == param.type.choices


def test_plot_unsupported_extension_is_usage_error(tmp_path):
    result = invoke("plot", str(tmp_path), "-o", str(tmp_path / "curves.txt"))

    assert result.exit_code == 2
    assert "'.txt'" in result.output
    assert ".png" in result.output
    assert not (tmp_path / "curves.txt").exists()


def test_run_rejects_seed_given_twice():
    result = invoke("run", LM_PROGRAM, "--seed", "3", "train.seed=4", "--dry-run")

    assert result.exit_code == 2
    assert "both set the seed" in result.output


def test_components_markdown_respects_the_filter():
    result = invoke("components", "--markdown", "model", "llama")

    assert result.exit_code == 0, result.output
    assert "#### `model llama`" in result.output
    assert "#### `data text`" not in result.output

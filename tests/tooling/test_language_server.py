"""Drive `rpc lsp` over real JSON-RPC messages: diagnostics, completion, hover and go-to-definition."""

from __future__ import annotations

import pathlib

import pytest

from reparamdsl.semantics.registry import default_registry
from tests.tooling.lsp_client import LspClient

ROOT = pathlib.Path(__file__).resolve().parents[2]

COMMON = "let width = 64\n"
PROGRAM = """import "common.rp"

data corpus = text {
    source = "python-stdlib"
    tokenizer = bytes
    context = 32
}

model lm = llama {
    vocab = corpus.vocab_size
    width = width
    depth = 0
    heads = 2
}

objective loss = next_token(lm, corpus)

train {
    steps = 10
    optimizer = adamw(lr = 1e-3)
}
"""


def position_of(text: str, needle: str, offset: int = 0) -> dict:
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return {"line": line, "character": index - (text.rfind("\n", 0, index) + 1)}


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lsp")
    (folder / "common.rp").write_text(COMMON, encoding="utf-8")
    main = folder / "main.rp"
    main.write_text(PROGRAM, encoding="utf-8")
    client = LspClient(str(ROOT))
    response = client.request("initialize", {"processId": None, "rootUri": folder.as_uri(), "capabilities": {}})
    capabilities = response["result"]["capabilities"]
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"], capabilities
    assert "=" in capabilities["completionProvider"]["triggerCharacters"]
    client.notify("initialized", {})
    client.notify("textDocument/didOpen", {"textDocument": {"uri": main.as_uri(), "languageId": "rp", "version": 1,
                                                            "text": PROGRAM}})
    yield client, main
    assert client.close() == 0


def test_open_publishes_diagnostic_at_value(session):
    client, main = session
    params = client.wait_notification("textDocument/publishDiagnostics",
                                      where=lambda p: p["uri"] == main.as_uri() and p["diagnostics"])
    (diagnostic,) = params["diagnostics"]
    assert "depth" in diagnostic["message"]
    start = position_of(PROGRAM, "depth = 0", offset=len("depth = "))
    assert diagnostic["range"]["start"] == start
    assert diagnostic["range"]["end"] == {"line": start["line"], "character": start["character"] + 1}
    assert diagnostic["severity"] == 1


def test_change_fixing_error_clears_diagnostics(session):
    client, main = session
    fixed = PROGRAM.replace("depth = 0", "depth = 1")
    client.notify("textDocument/didChange", {"textDocument": {"uri": main.as_uri(), "version": 2},
                                             "contentChanges": [{"text": fixed}]})
    params = client.wait_notification("textDocument/publishDiagnostics",
                                      where=lambda p: p["uri"] == main.as_uri() and not p["diagnostics"])
    assert params["diagnostics"] == []

    broken = fixed.replace("steps = 10", "steps = ")
    client.notify("textDocument/didChange", {"textDocument": {"uri": main.as_uri(), "version": 3},
                                             "contentChanges": [{"text": broken}]})
    params = client.wait_notification("textDocument/publishDiagnostics",
                                      where=lambda p: p["uri"] == main.as_uri() and p["diagnostics"])
    assert params["diagnostics"][0]["range"]["start"]["line"] == position_of(broken, "optimizer")["line"]

    client.notify("textDocument/didChange", {"textDocument": {"uri": main.as_uri(), "version": 4},
                                             "contentChanges": [{"text": fixed}]})
    client.wait_notification("textDocument/publishDiagnostics",
                             where=lambda p: p["uri"] == main.as_uri() and not p["diagnostics"])


def test_completion_of_parameter_names_in_block(session):
    client, main = session
    text = PROGRAM.replace("    heads = 2\n", "    heads = 2\n    ti\n")
    client.notify("textDocument/didChange", {"textDocument": {"uri": main.as_uri(), "version": 5},
                                             "contentChanges": [{"text": text}]})
    position = position_of(text, "    ti\n", offset=6)
    response = client.request("textDocument/completion", {"textDocument": {"uri": main.as_uri()},
                                                           "position": position})
    labels = [item["label"] for item in response["result"]["items"]]
    assert labels == ["tie_embeddings"]
    assert response["result"]["items"][0]["insertText"] == "tie_embeddings = "

    position = position_of(text, "    ti\n", offset=4)
    response = client.request("textDocument/completion", {"textDocument": {"uri": main.as_uri()},
                                                           "position": position})
    labels = {item["label"] for item in response["result"]["items"]}
    llama = default_registry().get("model", "llama")
    assert labels == {param.name for param in llama.params}


def test_completion_of_component_names(session):
    client, main = session
    text = PROGRAM + "\nmodel other = \n"
    client.notify("textDocument/didChange", {"textDocument": {"uri": main.as_uri(), "version": 6},
                                             "contentChanges": [{"text": text}]})
    position = position_of(text, "model other = ", offset=len("model other = "))
    response = client.request("textDocument/completion", {"textDocument": {"uri": main.as_uri()},
                                                           "position": position})
    labels = {item["label"] for item in response["result"]["items"]}
    assert labels == set(default_registry().names("model"))

    position = position_of(text, "adamw", offset=2)
    response = client.request("textDocument/completion", {"textDocument": {"uri": main.as_uri()},
                                                           "position": position})
    labels = {item["label"] for item in response["result"]["items"]}
    assert labels == {name for name in default_registry().names("optimizer") if name.startswith("ad")}


def test_hover_on_parameter_shows_type_default_and_doc(session):
    client, main = session
    client.notify("textDocument/didChange", {"textDocument": {"uri": main.as_uri(), "version": 7},
                                             "contentChanges": [{"text": PROGRAM}]})
    llama = default_registry().get("model", "llama")
    heads = llama.param("heads")
    response = client.request("textDocument/hover", {"textDocument": {"uri": main.as_uri()},
                                                     "position": position_of(PROGRAM, "heads = 2", offset=2)})
    value = response["result"]["contents"]["value"]
    assert f"**heads**: `{heads.type.describe()}`" in value
    assert heads.doc in value

    adamw = default_registry().get("optimizer", "adamw")
    response = client.request("textDocument/hover", {"textDocument": {"uri": main.as_uri()},
                                                     "position": position_of(PROGRAM, "lr = 1e-3")})
    value = response["result"]["contents"]["value"]
    assert f"default `{adamw.param('lr').default}`" in value

    response = client.request("textDocument/hover", {"textDocument": {"uri": main.as_uri()},
                                                     "position": position_of(PROGRAM, "llama", offset=1)})
    assert llama.doc in response["result"]["contents"]["value"]


def test_definition_of_references_and_imports(session, tmp_path):
    client, main = session
    common_uri = (main.parent / "common.rp").as_uri()

    response = client.request("textDocument/definition", {"textDocument": {"uri": main.as_uri()},
                                                          "position": position_of(PROGRAM, "vocab_size", offset=3)})
    assert response["result"]["uri"] == main.as_uri()
    assert response["result"]["range"]["start"] == position_of(PROGRAM, "corpus = text")

    response = client.request("textDocument/definition", {"textDocument": {"uri": main.as_uri()},
                                                          "position": position_of(PROGRAM, "= width", offset=3)})
    assert response["result"]["uri"] == common_uri
    assert response["result"]["range"]["start"] == {"line": 0, "character": 4}

    response = client.request("textDocument/definition", {"textDocument": {"uri": main.as_uri()},
                                                          "position": position_of(PROGRAM, '"common.rp"', offset=3)})
    assert response["result"]["uri"] == common_uri

    response = client.request("textDocument/definition", {"textDocument": {"uri": main.as_uri()},
                                                          "position": position_of(PROGRAM, "next_token(lm", offset=11)})
    assert response["result"]["range"]["start"] == position_of(PROGRAM, "lm = llama")

"""A minimal Language Server Protocol client for tests: JSON-RPC with Content-Length framing over pipes."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading


class LspClient:
    """Spawn `python -m reparamdsl lsp` and exchange messages with it."""

    def __init__(self, cwd: str):
        self.process = subprocess.Popen([sys.executable, "-m", "reparamdsl", "lsp"], cwd=cwd,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: queue.Queue = queue.Queue()
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            headers = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                line = line.decode("ascii").strip()
                if not line:
                    break
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = stream.read(int(headers["content-length"]))
            self.messages.put(json.loads(body))

    def send(self, message: dict) -> None:
        body = json.dumps(message).encode("utf-8")
        self.process.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode("ascii") + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: dict | None, timeout: float = 60.0) -> dict:
        """Send a request and return its response, keeping notifications for `wait_notification`."""
        self.next_id += 1
        request_id = self.next_id
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        pending = []
        try:
            while True:
                message = self.messages.get(timeout=timeout)
                if message.get("id") == request_id and "method" not in message:
                    return message
                pending.append(message)
        finally:
            for message in pending:
                self.messages.put(message)

    def wait_notification(self, method: str, timeout: float = 60.0, where=lambda params: True) -> dict:
        skipped = []
        try:
            while True:
                message = self.messages.get(timeout=timeout)
                if message.get("method") == method and where(message.get("params")):
                    return message["params"]
                skipped.append(message)
        finally:
            for message in skipped:
                self.messages.put(message)

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=20)
            self.notify("exit", {})
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
                stream.close()

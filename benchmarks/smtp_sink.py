"""An SMTP server on loopback in a process of its own (so it competes with no sender for a GIL):
`python -m benchmarks.smtp_sink` prints its port, then answers one command a line on stdin:
`count` (messages received), `clear`, `sample` (the last message, base64). It stops at EOF."""

from __future__ import annotations

import base64
import subprocess
import sys
from email.policy import SMTP
from types import TracebackType

from tests.support.smtp_server import SmtpServer


class SmtpSink:
    """The parent's handle on the server process."""

    def __enter__(self) -> SmtpSink:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.smtp_sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._line())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._line()

    def count(self) -> int:
        return int(self.ask("count"))

    def clear(self) -> None:
        self.ask("clear")

    def sample(self) -> bytes:
        return base64.b64decode(self.ask("sample"))


def serve() -> None:
    server = SmtpServer().start()
    print(server.port, flush=True)
    mailbox = server.mailbox
    for line in sys.stdin:
        command = line.strip()
        with mailbox.lock:
            if command == "count":
                answer = str(len(mailbox.messages))
            elif command == "clear":
                mailbox.messages.clear()
                mailbox.envelopes.clear()
                answer = "ok"
            elif command == "sample":
                answer = base64.b64encode(mailbox.messages[-1].as_bytes(policy=SMTP)).decode()
            else:
                answer = f"unknown command {command!r}"
        print(answer, flush=True)
    server.stop()


if __name__ == "__main__":
    serve()

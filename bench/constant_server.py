"""A server that does no work: every request answered ``{}`` at once (the load generator's floor).

``python -m bench.constant_server PORT``: raw asyncio protocol on uvloop,
requests parsed just enough to find their end (``Content-Length``). Served
beside the real servers in ``bench.agent``, its latency at fixed load is what
the load generator, the loopback and the machine add to every figure.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"
)


class Constant(asyncio.Protocol):
    """Answers each complete request on the connection with ``ANSWER``."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:  # uvloop's own TCPTransport
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(ANSWER)


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Constant, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.run(serve(int(sys.argv[1])))

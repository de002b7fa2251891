"""The floor: a FastAGI server that does nothing but the wire work.

It reads the header block up to its blank line, sends the given commands
one at a time (each after the previous reply), then closes. No parsing
beyond finding line ends, no routing, no logging: what any FastAGI server
on this event loop must at least spend per call.

    python bench/peers/floor_server.py --port 4600 --loop uvloop --commands commands.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket


class FloorSession(asyncio.Protocol):
    __slots__ = ("buf", "header_done", "step", "transport")

    commands: tuple[bytes, ...] = ()

    def __init__(self) -> None:
        self.buf = b""
        self.header_done = False
        self.step = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        buf = self.buf + data
        if not self.header_done:
            end = buf.find(b"\n\n")
            if end < 0:
                self.buf = buf
                return
            self.header_done = True
            self.buf = buf[end + 2:]
            self._next()
            return
        while b"\n" in buf:
            _, _, buf = buf.partition(b"\n")
            self._next()
        self.buf = buf

    def _next(self):
        if self.step < len(self.commands):
            self.transport.write(self.commands[self.step])
            self.step += 1
        else:
            self.transport.close()


async def serve(port: int, commands: tuple[bytes, ...]) -> None:
    FloorSession.commands = commands
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorSession, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"floor listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--commands", required=True, help="JSON list of command lines")
    args = parser.parse_args()
    with open(args.commands, encoding="utf-8") as f:
        commands = tuple((line + "\n").encode() for line in json.load(f))
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.port, commands))
    else:
        asyncio.run(serve(args.port, commands))


if __name__ == "__main__":
    main()

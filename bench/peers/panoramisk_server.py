"""panoramisk 1.4's own FastAGI ``Application`` sending the same commands.

The route handler sends each command with ``request.send_command`` (one
round trip each) and returns; ``Application.handler`` then closes the
socket. Run on the stdlib event loop, as panoramisk's documentation shows.

    python bench/peers/panoramisk_server.py --port 4602 --script calldist/700 --commands commands.json
"""

from __future__ import annotations

import argparse
import asyncio
import json

from panoramisk.fast_agi import Application


async def serve(port: int, script: str, commands: list[str]) -> None:
    app = Application(loop=asyncio.get_running_loop())

    async def route(request):
        for command in commands:
            await request.send_command(command)

    app.add_route(script, route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"panoramisk listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", default="calldist/700")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--commands", required=True, help="JSON list of command lines")
    args = parser.parse_args()
    with open(args.commands, encoding="utf-8") as f:
        commands = json.load(f)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.port, args.script, commands))
    else:
        asyncio.run(serve(args.port, args.script, commands))


if __name__ == "__main__":
    main()

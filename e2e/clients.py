"""Round trips with independent Python clients (websockets, httpx-sse) against an example.

Usage: python3 clients.py http://127.0.0.1:PORT/
"""

import asyncio
import json
import sys

import httpx
import websockets
from httpx_sse import aconnect_sse

PASSED = 0
FAILED = 0


async def check(name, coro):
    global PASSED, FAILED
    try:
        await asyncio.wait_for(coro, 15)
        PASSED += 1
        print(f"ok - python: {name}")
    except Exception as error:  # report and go on: every check is counted
        FAILED += 1
        print(f"not ok - python: {name}: {error!r}")


async def echo_text_and_binary(ws_base):
    async with websockets.connect(ws_base + "ws/echo") as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01\xff")
        assert await ws.recv() == b"\x00\x01\xff"
        big = "x" * (1 << 20)
        await ws.send(big)
        assert await ws.recv() == big


async def chat_broadcast(ws_base):
    async with websockets.connect(ws_base + "ws/chat") as a, websockets.connect(ws_base + "ws/chat") as b:
        await a.send('{"type":"chat","text":"from python"}')
        assert json.loads(await b.recv())["text"] == "from python"
        assert json.loads(await a.recv())["text"] == "from python"


async def deflate_negotiated(ws_base):
    # websockets offers permessage-deflate by default; the hub agrees, without context takeover
    async with websockets.connect(ws_base + "ws/echo") as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert agreed.startswith("permessage-deflate"), agreed
        assert "client_no_context_takeover" in agreed, agreed
        text = json.dumps({"type": "chat", "text": "compress me " * 500})
        await ws.send(text)
        assert await ws.recv() == text


async def clean_close(ws_base):
    ws = await websockets.connect(ws_base + "ws/chat")
    await ws.close(code=1000, reason="bye")
    assert ws.close_code == 1000


async def feed_tick(base):
    async with httpx.AsyncClient(timeout=10) as client:
        async with aconnect_sse(client, "GET", base + "events/feed") as source:
            assert source.response.headers["content-type"] == "text/event-stream"
            async for event in source.aiter_sse():
                assert event.event == "tick"
                data = json.loads(event.data)
                assert isinstance(data["count"], int) and data["time"].endswith("Z")
                return
    raise AssertionError("no tick")


async def chat_over_sse_with_resume(base, ws_base):
    async with httpx.AsyncClient(timeout=10) as client:
        async with websockets.connect(ws_base + "ws/chat") as ws:
            async with aconnect_sse(client, "GET", base + "events/chat") as source:
                await ws.send("line one\nevent: forged")
                events = source.aiter_sse()
                first = await events.__anext__()
                assert first.event == "message" and first.data == "line one\nevent: forged"
                last_id = first.id
            await ws.send("while away")
            headers = {"Last-Event-ID": last_id}
            async with aconnect_sse(client, "GET", base + "events/chat", headers=headers) as source:
                again = await source.aiter_sse().__anext__()
                assert again.data == "while away", again.data
                assert int(again.id) == int(last_id) + 1


async def main(base):
    ws_base = base.replace("http://", "ws://")
    await check("echo of text, binary and 1 MiB (websockets)", echo_text_and_binary(ws_base))
    await check("chat broadcast reaches both (websockets)", chat_broadcast(ws_base))
    await check("permessage-deflate agreed and a 6 KB message round-trips (websockets)", deflate_negotiated(ws_base))
    await check("clean close handshake (websockets)", clean_close(ws_base))
    await check("feed tick as JSON (httpx-sse)", feed_tick(base))
    await check("chat over SSE, resumed with Last-Event-ID (httpx-sse)", chat_over_sse_with_resume(base, ws_base))
    print(f"python: {PASSED} passed, {FAILED} failed")
    return FAILED == 0


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(main(sys.argv[1])) else 1)

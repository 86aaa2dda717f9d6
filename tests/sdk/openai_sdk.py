"""Drive a demo gateway with the official OpenAI Python SDK, unmodified.

Run by .ci/run after `cargo test` (which builds target/debug/aperture):
    python3 tests/sdk/openai_sdk.py [path/to/aperture]
Exits non-zero with a message on the first broken expectation.
"""
import base64
import re
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import openai

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "debug" / "aperture"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOFn segment."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    while i + 9 < len(data):
        assert data[i] == 0xFF, "broken JPEG segment"
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise AssertionError("no SOF segment in the JPEG")


def start_gateway(data_dir: str):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("APERTURE_", "CACHE_", "GEMINI_"))}
    proc = subprocess.Popen(
        [str(BINARY), "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    key = addr = None
    for line in proc.stdout:
        if m := re.search(r"Demo client key \(APERTURE_API_KEY\): (\S+)", line):
            key = m.group(1)
        if m := re.search(r"Proxy server started on (http://\S+)", line):
            addr = m.group(1)
            break
    if not (key and addr):
        proc.kill()
        sys.exit("the demo gateway did not start")
    return proc, key, addr


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        proc, key, addr = start_gateway(data_dir)
        try:
            client = openai.OpenAI(base_url=f"{addr}/v1", api_key=key, max_retries=0)

            result = client.images.generate(model="gemini-3-pro-image", prompt="A serene lake at dawn",
                                            size="1792x1024", n=2)
            assert len(result.data) == 2, result
            assert result.output_format == "jpeg", result.output_format
            for image in result.data:
                assert jpeg_size(base64.b64decode(image.b64_json)) == (1376, 768)
            print("ok: n=2, 1792x1024 -> 16:9 1376x768 JPEGs (what Gemini 3 Pro sends)")

            url = client.images.generate(prompt="A red kite", response_format="url", quality="hd").data[0].url
            assert url.startswith("data:image/jpeg;base64,"), url[:40]
            assert jpeg_size(base64.b64decode(url.split(",", 1)[1])) == (4096, 4096)
            print("ok: response_format=url, quality=hd -> 4096x4096")

            png = client.images.generate(prompt="A red kite", extra_body={"output_format": "png"})
            assert png.output_format == "png", png.output_format
            assert png_size(base64.b64decode(png.data[0].b64_json)) == (1024, 1024)
            print("ok: output_format=png converts the JPEG")

            try:
                client.images.generate(prompt="A red kite emu:finish=IMAGE_OTHER")
                sys.exit("a no-image answer was not reported")
            except openai.BadRequestError as e:
                assert e.body["code"] == "IMG_NO_IMAGE", e.body
                assert e.body["error_type"] == "USER_ERROR", e.body
            print("ok: a no-image refusal -> BadRequestError IMG_NO_IMAGE")

            try:
                client.images.generate(prompt="A red kite", n=11)
                sys.exit("n=11 was accepted")
            except openai.BadRequestError as e:
                assert e.status_code == 400 and e.body["code"] == "IMG_INVALID_REQUEST", e.body
                assert e.body["param"] == "n", e.body
            print("ok: n=11 -> BadRequestError IMG_INVALID_REQUEST param=n")

            try:
                client.images.generate(prompt="prohibited-test poster")
                sys.exit("an upstream safety block was not reported")
            except openai.BadRequestError as e:
                assert e.body["code"] == "IMG_SAFETY_BLOCKED", e.body
                assert e.body["error_type"] == "USER_ERROR", e.body
            print("ok: upstream block -> BadRequestError IMG_SAFETY_BLOCKED")

            try:
                openai.OpenAI(base_url=f"{addr}/v1", api_key="wrong-key-123", max_retries=0).images.generate(prompt="x")
                sys.exit("a wrong key was accepted")
            except openai.AuthenticationError as e:
                assert e.body["code"] == "IMG_UNAUTHORIZED", e.body
            print("ok: wrong key -> AuthenticationError")

            models = [m.id for m in client.models.list()]
            assert "gemini-3-pro-image" in models and "gemini-3.1-flash-image" in models, models
            print("ok: models.list()")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

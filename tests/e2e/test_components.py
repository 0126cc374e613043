"""Lens' copy of the clickable image's frontend (lib/frontend/image_coordinates) in Chromium,
without Streamlit: its document arrives in two parts, as a busy browser parses it (head and
scripts first, the body later), and a parent page answers "ready" at once, as Streamlit does.
The image must still be drawn. The original frontend said "ready" from <head>, and the render
then found no image element (a TypeError; the image stayed blank)."""

import base64
import functools
import http.server
import io
import threading
import time

import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

FRONTEND = ROOT / "lib" / "frontend" / "image_coordinates"


def _png_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


PARENT = """<!DOCTYPE html><html><body><iframe id="f" src="/index.html"></iframe><script>
window.heights = [];
window.addEventListener("message", (e) => {
  if (e.data.type === "streamlit:componentReady")
    e.source.postMessage({type: "streamlit:render", args: {src: "%s", click_and_drag: true,
                                                          cursor: "crosshair"}}, "*");
  if (e.data.type === "streamlit:setFrameHeight") window.heights.push(e.data.height);
});
</script></body></html>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The frontend's files; index.html in two parts, its body 1 s after its head."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/parent.html":
            self._send(PARENT.replace("%s", _png_data_url()).encode())
        elif self.path == "/index.html":
            html = (FRONTEND / "index.html").read_bytes()
            head, body = html.split(b"<body>", 1)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(head + b" " * 4096)     # enough for the parser to run it
            self.wfile.flush()
            time.sleep(1.0)
            self.wfile.write(b"<body>" + body)
        else:
            super().do_GET()

    def _send(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_the_clickable_image_is_drawn_when_its_body_arrives_late(page):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(FRONTEND)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/parent.html")
        page.wait_for_function("window.heights.length > 0", timeout=10_000)
        assert page.evaluate("window.heights") == [48]      # the image's own height
        image = page.frame_locator("#f").locator("#image")
        assert (image.get_attribute("src") or "").startswith("data:image/png")
        assert not errors, errors
    finally:
        server.shutdown()

"""Lens' copy of the clickable image's frontend (lib/frontend/image_coordinates) in Chromium,
without Streamlit: a parent page that, like Streamlit on a busy browser, misses the first
"ready" message still gets the image drawn and its height."""

import base64
import io

import pytest
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

FRONTEND = ROOT / "lib" / "frontend" / "image_coordinates" / "index.html"


def test_the_clickable_image_renders_though_its_first_ready_message_was_missed(page, tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, "PNG")
    src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    parent = tmp_path / "parent.html"
    parent.write_text(f"""<!DOCTYPE html><html><body>
<iframe id="f" src="{FRONTEND.as_uri()}"></iframe>
<script>
window.readies = 0; window.heights = [];
window.addEventListener("message", (e) => {{
  if (e.data.type === "streamlit:componentReady") {{
    window.readies += 1;
    if (window.readies === 1) return;          // missed, as by a listener registered late
    document.getElementById("f").contentWindow.postMessage(
      {{type: "streamlit:render", args: {{src: "{src}", click_and_drag: true,
                                          cursor: "crosshair"}}}}, "*");
  }}
  if (e.data.type === "streamlit:setFrameHeight") window.heights.push(e.data.height);
}});
</script></body></html>""")
    page.goto(parent.as_uri())
    page.wait_for_function("window.heights.length > 0", timeout=10_000)
    assert page.evaluate("window.heights") == [48]       # the image's own height
    image = page.frame_locator("#f").locator("#image")
    assert (image.get_attribute("src") or "").startswith("data:image/png")
    page.wait_for_timeout(600)
    assert page.evaluate("window.readies") == 2          # and no more once rendered

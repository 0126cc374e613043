"""Start-up time: `streamlit run` to the first painted page in headless Chromium.

    python bench/startup.py [--repeats 7]

Measures Lens (its Home title) and a hello-world multipage Streamlit app (its title) in the
same run, alternating, and prints the ratio of the medians, `startup ratio (Lens / hello
world): X`, on the last line (7 repeats each by default: single runs vary by 0.2 s here).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, start_streamlit

HELLO_APP = '''import streamlit as st
pages = [st.Page("pages/home.py", title="Home", default=True), st.Page("pages/other.py")]
st.navigation(pages).run()
'''


def make_hello(folder: Path) -> Path:
    (folder / "pages").mkdir()
    (folder / "app.py").write_text(HELLO_APP)
    (folder / "pages" / "home.py").write_text('import streamlit as st\nst.title("Hello")\n')
    (folder / "pages" / "other.py").write_text('import streamlit as st\nst.title("Other")\n')
    return folder / "app.py"


def time_to_paint(browser, script: Path, heading: str) -> float:
    port = free_port()
    t0 = time.perf_counter()
    proc = start_streamlit(script, port, script.parent)
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
        elapsed = time.perf_counter() - t0
        page.close()
        return elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        hello = make_hello(Path(tmp))
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        lens, base = [], []
        for _ in range(args.repeats):
            base.append(time_to_paint(browser, hello, "Hello"))
            lens.append(time_to_paint(browser, ROOT / "app.py", "Lens"))
        browser.close()
    lens_s, base_s = statistics.median(lens), statistics.median(base)
    print(f"hello world: {base_s:.2f} s (runs: {', '.join(f'{t:.2f}' for t in base)})")
    print(f"Lens:        {lens_s:.2f} s (runs: {', '.join(f'{t:.2f}' for t in lens)})")
    print(f"startup ratio (Lens / hello world): {lens_s / base_s:.2f}")


if __name__ == "__main__":
    main()

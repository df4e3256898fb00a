"""The picture as a person sees it: headless Chromium renders the TodoList:3 page.

Chromium (Debian package ``chromium``) takes a screenshot of the page and
dumps the DOM after its script ran.  The screenshot must not be blank (its
distinct colours are counted from the PNG, decoded here with zlib and
struct), and must show the red of the finding and of the dashed box where
TodoList:3's tool message is missing; the DOM must hold the finding, the
call's bar, the missing message, and a turn the page's script opened to
follow a link into it.

Where Chromium is not installed: outside CI the test skips, saying so.  In
CI (``CI=true``, which cannot install it in time) it checks instead that the
last real-browser run, recorded by ``.ci/browser-check`` in
``docs/show-browser.json``, saw this very page (the SHA-256 of its bytes) and
that its screenshot ``docs/show-todolist3.png`` is not blank: a change to
the page fails CI until someone runs the browser again.  ``.ci/browser-check``
installs Chromium if it can, runs this test in a real browser and rewrites
that record (``CTXCONTRACT_BROWSER_RECORD=1``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from ctxref.formats import load
from ctxref.show import of_session, render
from test_show import problems, read_html

ROOT = Path(__file__).parent.parent
TODOLIST3 = "examples/kimi-wire/todolist3.jsonl"
RECORD = ROOT / "docs" / "show-browser.json"
SCREENSHOT = ROOT / "docs" / "show-todolist3.png"
WINDOW = (1400, 900)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--hide-scrollbars")
#: The red of a finding (#d32f2f) and the pink of a finding's background (#fdecea).
RED, PINK = (0xD3, 0x2F, 0x2F), (0xFD, 0xEC, 0xEA)


def chromium() -> str | None:
    for name in (os.environ.get("CTXCONTRACT_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def todolist3_page() -> str:
    """The page ``ctxcontract show examples/kimi-wire/todolist3.jsonl`` writes (run from the checkout)."""
    return render(of_session(load(str(ROOT / TODOLIST3)), title=TODOLIST3))


# -- PNG, read with the standard library ---------------------------------------------------------


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and the RGB pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG kind {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels.extend(zip(line[0::bpp], line[1::bpp], line[2::bpp]))
        previous = line
    return width, height, pixels


def colours(png: bytes) -> Counter[tuple[int, int, int]]:
    width, height, pixels = png_pixels(png)
    assert (width, height) == WINDOW
    return Counter(pixels)


def near(counts: Counter[tuple[int, int, int]], target: tuple[int, int, int], slack: int = 6) -> int:
    return sum(n for c, n in counts.items() if all(abs(a - b) <= slack for a, b in zip(c, target)))


def assert_not_blank(png: bytes) -> None:
    counts = colours(png)
    assert len(counts) >= 50, f"only {len(counts)} distinct colours: a blank page"
    assert counts.most_common(1)[0][1] < 0.9 * sum(counts.values()), "one colour covers nine tenths of the screenshot"
    assert near(counts, RED) >= 400, "the finding's red is not on the screen"
    assert near(counts, PINK) >= 4000, "the pink of the marked rows and messages is not on the screen"


# -- the test ----------------------------------------------------------------------------------


def run_chromium(binary: str, url: str, *extra: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    argv = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(argv, capture_output=True, timeout=180)


def test_chromium_renders_the_todolist3_picture(tmp_path: Path) -> None:
    page = todolist3_page()
    digest = hashlib.sha256(page.encode("utf-8")).hexdigest()
    binary = chromium()
    if binary is None:
        if os.environ.get("CTXCONTRACT_BROWSER_RECORD"):
            pytest.fail("chromium is not installed: .ci/browser-check needs a real browser")
        if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
            pytest.skip("chromium is not installed (apt-get install chromium, or run .ci/browser-check)")
        # CI: the last real-browser run must have seen this very page
        record = json.loads(RECORD.read_text(encoding="utf-8"))
        assert record["page_sha256"] == digest, "the page changed since the last real-browser check: run .ci/browser-check and commit docs/show-browser.json"
        assert_not_blank(SCREENSHOT.read_bytes())
        return
    html = tmp_path / "todolist3.html"
    html.write_text(page, encoding="utf-8")
    shot = tmp_path / "todolist3.png"
    proc = run_chromium(binary, html.as_uri(), f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", profile=tmp_path / "profile")
    assert proc.returncode == 0 and shot.exists(), proc.stderr.decode(errors="replace")[-2000:]
    png = shot.read_bytes()
    assert_not_blank(png)
    # the DOM after the page's script ran, with a link into the collapsed first turn followed
    dom = run_chromium(binary, html.as_uri() + "#r1", "--dump-dom", "--virtual-time-budget=2000", profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    seen = read_html(dom.stdout.decode("utf-8"))
    assert problems(seen, findings=1, calls=1) == []
    (card,) = seen.findings()
    assert card.attrs["data-rule"] == "C6"
    (ghost,) = seen.with_class("ghost")
    assert "tool message for TodoList:3" in ghost.text
    assert [b.attrs["data-call"] for b in seen.bars()] == ["TodoList:3"]
    first_turn = next(e for e in seen.elements if e.tag == "details")
    assert "open" in first_turn.attrs, "the script did not open the turn the link points into"
    assert "open" not in read_html(page).elements[[e.tag for e in read_html(page).elements].index("details")].attrs  # it starts collapsed
    if os.environ.get("CTXCONTRACT_BROWSER_RECORD"):
        version = subprocess.run([binary, "--version"], capture_output=True, timeout=60).stdout.decode().strip()
        counts = colours(png)
        SCREENSHOT.write_bytes(png)
        RECORD.write_text(
            json.dumps(
                {
                    "what": "the last run of tests/test_show_browser.py in a real browser (.ci/browser-check)",
                    "page": f"ctxcontract show {TODOLIST3}",
                    "page_sha256": digest,
                    "browser": version,
                    "window": list(WINDOW),
                    "screenshot": "docs/show-todolist3.png",
                    "distinct_colours": len(counts),
                    "red_pixels": near(counts, RED),
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )

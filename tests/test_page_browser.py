"""The interactive page in a real browser (headless Chromium through Selenium): change the stride, step through the
positions, and check every highlighted cell and sum against Python's own computation. A screenshot goes to
artifacts/page_browser*.png.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and ``pip install selenium``; skips (with the reason)
only when they are missing.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from convforge import nn
from convforge.draw import to_html
from convforge.draw._page import python_frames

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and os.path.exists(p)), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver") if p and os.path.exists(p)), None)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="headless Chromium is not installed (apt-get install -y chromium "
                                       "chromium-driver): the real-browser test of the page cannot run")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="cf-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1300,1100"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _state(driver):
    return json.loads(driver.find_element("id", "cf-state").get_attribute("textContent"))


def _dom_highlighted(driver, grid):
    cells = driver.execute_script(
        "return [...document.querySelectorAll('.cf-cell[data-grid=\"' + arguments[0] + '\"][data-hl=\"1\"]')]"
        ".map(e => [Number(e.dataset.c), e.dataset.pos]);", grid)
    return {(c, tuple(int(v) for v in pos.split(","))) for c, pos in cells}


def _set(driver, element_id, value):
    from selenium.webdriver.common.keys import Keys
    el = driver.find_element("id", element_id)
    el.clear()
    el.send_keys(value, Keys.TAB)   # typing then leaving the field fires 'change', as for a person


def _goto(driver, k):
    driver.execute_script("const s = document.getElementById('cf-slider'); s.value = arguments[0];"
                          "s.dispatchEvent(new Event('input'));", k)


def _check_all_frames(driver, fs):
    _goto(driver, 0)
    next_button = driver.find_element("id", "cf-next")
    assert int(driver.find_element("id", "cf-slider").get_attribute("max")) == len(fs) - 1
    for k, fr in enumerate(fs.frames):
        st = _state(driver)
        assert st["frame"] == k and st["frames"] == len(fs)
        assert tuple(st["position"]) == fr.position and st["outChannel"] == fr.out_channel
        assert [(c["c"], tuple(c["pos"])) for c in st["cells"]] == [(c, p) for c, p in fr.highlighted]
        if fr.view == "conv":
            assert _dom_highlighted(driver, "input") == set(fr.highlighted)
            assert _dom_highlighted(driver, "output") == {(fr.out_channel, fr.position)}
            assert st["sum"] == pytest.approx(fr.value, rel=1e-12, abs=1e-12)   # the layer's own output value
            assert driver.find_element("id", "cf-formula").text.endswith(f"= {int(fr.value)}")
        else:
            assert _dom_highlighted(driver, "output") == set(fr.highlighted)
        next_button.click()
    assert _state(driver)["frame"] == 0   # wraps around


def test_page_in_chromium(browser, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page = to_html(nn.Conv2d(1, 1, 3, padding=1), (1, 1, 5, 5), tmp_path / "page.html")
    browser.get(Path(page).resolve().as_uri())
    check = browser.find_element("id", "cf-check")
    assert check.get_attribute("data-ok") == "1", check.text

    # the initial layer: 25 frames; jump with the slider to the middle one
    fs = python_frames(nn.Conv2d(1, 1, 3, padding=1), (1, 1, 5, 5))
    assert _state(browser)["frames"] == 25
    _goto(browser, 12)
    assert _dom_highlighted(browser, "input") == set(fs[12].highlighted)

    # change the stride as a person would, then step through every position
    _set(browser, "cf-stride", "2")
    assert browser.find_element("id", "cf-error").is_displayed() is False
    assert "floor((5 + 1 + 1 - 1*(3-1) - 1) / 2) + 1 = 3" in browser.find_element("id", "cf-size").text
    _check_all_frames(browser, python_frames(nn.Conv2d(1, 1, 3, stride=2, padding=1), (1, 1, 5, 5)))
    browser.find_element("id", "cf-next").click()
    browser.save_screenshot(str(ARTIFACTS / "page_browser_conv.png"))

    # a bad value shows a clear message instead of a picture
    _set(browser, "cf-kernel", "9")
    err = browser.find_element("id", "cf-error")
    assert err.is_displayed() and "smaller than the dilated kernel size 9" in err.text
    _set(browser, "cf-kernel", "3")
    assert not err.is_displayed()

    # transposed with odd output padding, both views
    browser.find_element("id", "cf-transposed").click()
    _set(browser, "cf-output-padding", "1")
    _set(browser, "cf-input", "3,3")
    layer = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)
    _check_all_frames(browser, python_frames(layer, (1, 1, 3, 3), "conv"))
    from selenium.webdriver.support.ui import Select
    Select(browser.find_element("id", "cf-view")).select_by_value("scatter")
    _check_all_frames(browser, python_frames(layer, (1, 1, 3, 3), "scatter"))
    browser.save_screenshot(str(ARTIFACTS / "page_browser_scatter.png"))
    assert (ARTIFACTS / "page_browser_conv.png").stat().st_size > 10_000


def test_grouped_page_in_chromium(browser, tmp_path):
    layer = nn.Conv1d(4, 4, 3, groups=2, padding=1, padding_mode="circular")
    page = to_html(layer, (1, 4, 6), tmp_path / "g.html")
    browser.get(Path(page).resolve().as_uri())
    assert browser.find_element("id", "cf-check").get_attribute("data-ok") == "1"
    _check_all_frames(browser, python_frames(layer, (1, 4, 6)))
    colors = browser.execute_script(
        "return [...document.querySelectorAll('.cf-label')].map(e => getComputedStyle(e).color);")
    assert len(set(colors)) >= 2   # a colour per group

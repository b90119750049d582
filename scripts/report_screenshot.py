"""Screenshot an ``--fcp-html`` report in headless Chromium (Debian's chromium + chromium-driver, selenium).

    python scripts/report_screenshot.py report.html docs/report.png --theme combinations \\
        --open combinations/vision_blocked_rest_recovers

Opens the page from disk, optionally filters one theme and opens one scenario's row, and saves a PNG of the
top of the page. Exits 1 if the browser's console shows an error.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys


def main() -> int:
    """Take the screenshot; 1 on a console error."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import Select

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("html", type=pathlib.Path)
    parser.add_argument("png", type=pathlib.Path)
    parser.add_argument("--theme", help="show only this theme")
    parser.add_argument("--open", dest="scenario", help="open this scenario's row (its flows)")
    parser.add_argument("--size", default="1400,1100", help="window width,height in px (1400,1100)")
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("google-chrome") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={args.size}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(args.html.resolve().as_uri())
        if args.theme:
            Select(driver.find_element("id", "f-theme")).select_by_value(args.theme)
        for row in driver.find_elements("css selector", "tr.row"):
            if args.scenario and row.is_displayed() and row.find_element("css selector", "td.id").text == args.scenario:
                row.click()
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(args.png))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    for error in errors:
        print(f"console error: {error['message']}", file=sys.stderr)
    print(f"{args.png}: {args.png.stat().st_size / 1024:.0f} KiB")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())

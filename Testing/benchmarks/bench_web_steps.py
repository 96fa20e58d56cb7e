"""Benchmark of the web page's steps as a person runs them: ``tareplanner serve`` on a
temporary data folder, headless Chromium (Playwright) through every step of the small
synthetic patient with three injection positions.

    python Testing/benchmarks/bench_web_steps.py [--positions 3] [--repeat 1] [--json out.json]
                                                 [--markdown docs/benchmarks.md]

Needs the ``web`` extra and /usr/bin/chromium. Times, from the browser:

- page load: from ``page.goto`` until the panels have arrived over the websocket (the page
  is usable);
- each step: from the click on its button until the server has pushed the page's state
  after it (the step ran, the views and the page's state were updated), as a user waits
  for it. The treatment-day readings are typed before the administration is timed.

In the same run, the bare library call the slowest step stands on: one SimpleITK rigid
registration (``sitk.ImageRegistrationMethod``, Mattes MI, Euler 3D, a three-level pyramid,
every thread ITK wants) of one CBCT of the same patient to its CT, so that runs on a shared
machine can be compared by their ratio. Not a test: ``--markdown FILE`` replaces the table
between the markers ``<!-- bench_web_steps -->`` and ``<!-- /bench_web_steps -->`` in FILE
with this run's (date, machine, load average, times, ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
STEPS = ("load", "registration", "lungs", "territories", "check segments", "measurement",
         "plan", "directive", "administration", "verification", "save")
MARK, END = "<!-- bench_web_steps -->", "<!-- /bench_web_steps -->"
TIMEOUT_MS = 300_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(data: Path, log_path: Path):
    port = _free_port()
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "tareplanner", "serve", "--port",
                                str(port), "--data", str(data)], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url, log
        except (urllib.error.URLError, ConnectionError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("tareplanner serve did not start:\n"
                                 + log_path.read_text()[-3000:]) from None
            time.sleep(0.3)


def _updates(page) -> int:
    return int(page.locator("[data-updates]").get_attribute("data-updates"))


def _after(page, before: int) -> None:
    page.wait_for_function("(n) => Number(document.querySelector('[data-updates]')"
                           ".dataset.updates) > n", arg=before, timeout=TIMEOUT_MS)


def _click_timed(page, action: str) -> float:
    button = page.locator(f'[data-action="{action}"]')
    button.scroll_into_view_if_needed()
    if not button.is_enabled():
        raise SystemExit(f"{action}: button disabled ({_tooltip_text(page, action)})")
    before = _updates(page)
    start = time.perf_counter()
    button.click()
    _after(page, before)
    elapsed = time.perf_counter() - start
    panel = page.locator(f'[data-error="{_PANELS[action]}"]')
    if panel.count():
        raise SystemExit(f"{action}: {panel.inner_text()}")
    return elapsed


def _tooltip_text(page, action: str) -> str:
    return page.evaluate("(a) => document.querySelector(`[data-action=\"${a}\"]`)"
                         ".closest('[title]')?.title || ''", action)


_PANELS = {"load": "data", "registration": "registration", "lungs": "segmentation",
           "territories": "segmentation", "check segments": "segmentation",
           "measurement": "measurement", "plan": "plan", "directive": "treatment day",
           "administration": "treatment day", "verification": "verification",
           "save": "save"}


def _fill(page, selector: str, value: str) -> None:
    field = page.locator(selector).locator("input").first
    field.scroll_into_view_if_needed()
    before = _updates(page)
    field.fill(value)
    field.blur()
    _after(page, before)


def _choose(page, selector: str, option: str) -> None:
    page.locator(selector).first.click()
    menu = page.locator(".v-menu .v-overlay__content >> visible=true")
    before = _updates(page)
    menu.get_by_role("option", name=option, exact=True).click()
    menu.first.wait_for(state="hidden")
    if page.locator(selector).first.inner_text().find(option) < 0:
        _after(page, before)


def _plan_activities(page) -> list[float]:
    """The Activity (GBq) column of the plan table, in row order."""
    rows = page.locator("[data-plan-table] tbody tr")
    return [float(rows.nth(i).locator("td").nth(2).inner_text())
            for i in range(rows.count())]


def drive(url: str, positions: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright
    times: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1680, "height": 1050})
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        document = time.perf_counter() - start
        page.wait_for_selector('[data-title="data"]', timeout=TIMEOUT_MS)
        times["page load"] = time.perf_counter() - start
        print(f"page load: the document in {document:.2f} s, the panels in "
              f"{times['page load']:.2f} s", flush=True)
        if positions != 2:
            _choose(page, '[data-field="synthetic_positions"]', str(positions))
        for action in STEPS:
            if action == "administration":
                day = "2026-12-01"
                for index, activity in enumerate(_plan_activities(page)):
                    readings = {"vialGbq": f"{activity + 0.05:.3f}",
                                "vialTime": f"{day}T09:00:00+01:00",
                                "residualGbq": "0.05", "residualTime": f"{day}T10:30:00+01:00",
                                "administeredAt": f"{day}T09:00:00+01:00"}
                    for field, value in readings.items():
                        _fill(page, f'[data-reading="{field}-{index}"]', value)
            times[action] = _click_timed(page, action)
        context.close()
        browser.close()
    return times


def bare_registration(positions: int) -> float:
    """One CBCT of the same patient registered to its CT by SimpleITK alone (seconds)."""
    import SimpleITK as sitk

    from tareplanner.imaging.phantom import make_phantom, spec_for_size
    phantom = make_phantom(spec_for_size("small", positions))
    fixed = sitk.Cast(phantom.ct, sitk.sitkFloat32)
    moving = sitk.Cast(next(iter(phantom.cbcts.values())), sitk.sitkFloat32)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(48)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.06, 20261122)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 1e-3, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([3.0, 1.5, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY))
    start = time.perf_counter()
    reg.Execute(fixed, moving)
    return time.perf_counter() - start


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        kb = int(next(line.split()[1] for line in open("/proc/meminfo")
                      if line.startswith("MemTotal")))
        memory = f", {kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cpus} CPU cores{memory}, {platform.machine()}, Python {platform.python_version()}"


def markdown(runs: list[dict], bare: list[float], positions: int, loads: list) -> str:
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    bare_best = min(bare)
    load_text = ", ".join(f"{a:.1f}" for a in loads)
    lines = [f"Run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
             f"{len(runs)} run(s) (best shown), 1-minute load average {load_text} "
             f"(other people's jobs on the shared machine). Bare: one SimpleITK rigid "
             f"registration of one CBCT of the same patient, {bare_best:.2f} s "
             f"(runs: {', '.join(f'{b:.2f}' for b in bare)}).", "",
             f"| step ({positions} positions) | time (s) | ratio to bare | target |",
             "|---|---|---|---|"]
    for key, value in best.items():
        target = 2.0 if key == "page load" else 5.0
        lines.append(f"| {key} | {value:.2f} | {value / bare_best:.2f} | "
                     f"≤ {target:g} s{'' if value <= target else ' (not met)'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--markdown", help="replace the table between the markers in FILE")
    args = parser.parse_args(argv)
    runs, bare, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for run in range(args.repeat):
            data = tmp / f"data{run}"
            data.mkdir()
            process, url, log = _start_server(data, tmp / f"serve{run}.log")
            try:
                loads.append(os.getloadavg()[0])
                runs.append(drive(url, args.positions))
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                log.close()
            bare.append(bare_registration(args.positions))
            for key, value in runs[-1].items():
                print(f"{key:16s} {value:6.2f} s")
            print(f"{'bare':16s} {bare[-1]:6.2f} s (one SimpleITK registration)", flush=True)
    text = markdown(runs, bare, args.positions, loads)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "bare_s": bare, "load": loads,
                                               "machine": machine()}, indent=1))
    if args.markdown:
        path = Path(args.markdown)
        doc = path.read_text()
        if MARK not in doc or END not in doc:
            raise SystemExit(f"{path}: no {MARK} ... {END} markers")
        head, rest = doc.split(MARK, 1)
        path.write_text(head + MARK + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())

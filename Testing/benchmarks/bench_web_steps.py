"""Benchmark of the web page's steps as a person runs them: ``tareplanner serve`` on a
temporary data folder, headless Chromium (Playwright) through every step of the small
synthetic patient with three injection positions.

    python Testing/benchmarks/bench_web_steps.py [--positions 3] [--repeat 1] [--json out.json]
                                                 [--markdown docs/benchmarks.md]

Needs the ``web`` extra and /usr/bin/chromium. Times, from the browser:

- page load: from ``page.goto`` until the panels have arrived over the websocket and the
  first step's panel is built (the page is usable); "every step built": until the last
  step's controls are built too (they are built one browser task after another);
- each step: from the click on its button until the server has pushed the page's state
  after it (the step ran, the views and the page's state were updated), as a user waits
  for it. The treatment-day readings are typed before the administration is timed.
  "save: report PDF": from the click on Save until the report's link is in the page (the
  report is drawn by a worker process after the step).

In the same run, the bare library calls: one SimpleITK rigid registration
(``sitk.ImageRegistrationMethod``, Mattes MI, Euler 3D, a three-level pyramid, every thread
ITK wants) of one CBCT of the same patient to its CT, the slowest step's; and the load of a
bare trame page (trame's Vue 3 client with Vuetify 3, one button, the same browser), the page
load's; so that runs on a shared machine can be compared by their ratios. ``--before TREE``
(a checkout's ``TAREPlanner`` folder) drives a server of that code too, alternating with
this one, for before/after figures from the same minutes. Not a test: ``--markdown FILE``
replaces the table between the markers ``<!-- bench_web_steps -->`` and
``<!-- /bench_web_steps -->`` in FILE with this run's (date, machine, load average, times,
ratios).
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


BARE_PAGE = """
import sys
from trame.app import get_server
from trame.ui.vuetify3 import VAppLayout
from trame.widgets import vuetify3 as v3
server = get_server(client_type="vue3")
with VAppLayout(server, full_height=True):
    v3.VBtn("bare", raw_attrs=['data-bare'])
server.start(host="127.0.0.1", port=int(sys.argv[1]), open_browser=False, timeout=0)
"""


def _start_server(data: Path, log_path: Path, tree: str | None = None, bare: bool = False):
    port = _free_port()
    log = open(log_path, "w")
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    command = ([sys.executable, "-c", BARE_PAGE, str(port)] if bare else
               [sys.executable, "-m", "tareplanner", "serve", "--port", str(port), "--data",
                str(data)])
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
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


def _launch(pw):
    return pw.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])


def load_page(browser, url: str, ready: str = '[data-action="load"]',
              every: str | None = '[data-action="save"]') -> tuple[float, float | None]:
    """(seconds until ``ready`` is in the page, until ``every`` is) in a fresh context."""
    context = browser.new_context(viewport={"width": 1680, "height": 1050})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(ready, state="attached", timeout=TIMEOUT_MS)
    shown = time.perf_counter() - start
    built = None
    if every:
        page.wait_for_selector(every, state="attached", timeout=TIMEOUT_MS)
        built = time.perf_counter() - start
    context.close()
    return shown, built


def page_loads(urls: dict[str, str], repeat: int) -> dict[str, list]:
    """Page loads of each server (name -> url), alternating, ``repeat`` times each; the
    bare trame page's as "bare"."""
    from playwright.sync_api import sync_playwright
    out: dict[str, list] = {name: [] for name in urls}
    with sync_playwright() as pw:
        browser = _launch(pw)
        for name, url in urls.items():          # one load each first: caches and workers
            load_page(browser, url, *(("[data-bare]", None) if name == "bare" else ()))
        for _ in range(repeat):
            for name, url in urls.items():
                out[name].append(load_page(browser, url, *(("[data-bare]", None)
                                                          if name == "bare" else ())))
        browser.close()
    return out


def drive(url: str, positions: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright
    times: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = _launch(pw)
        context = browser.new_context(viewport={"width": 1680, "height": 1050})
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        start = time.perf_counter()
        page.goto(url, wait_until="domcontentloaded")
        document = time.perf_counter() - start
        page.wait_for_selector('[data-action="load"]', state="attached", timeout=TIMEOUT_MS)
        times["page load"] = time.perf_counter() - start
        page.wait_for_selector('[data-action="save"]', state="attached", timeout=TIMEOUT_MS)
        times["page: every step built"] = time.perf_counter() - start
        print(f"page load: the document in {document:.2f} s, the first step in "
              f"{times['page load']:.2f} s, every step in "
              f"{times['page: every step built']:.2f} s", flush=True)
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
            start = time.perf_counter()
            times[action] = _click_timed(page, action)
            if action == "save" and page.locator('[data-output="save"]').inner_text().find(
                    "report.pdf: being drawn") >= 0:
                page.wait_for_function("() => !!window.trame.state.get('report_name')",
                                       timeout=TIMEOUT_MS)
                times["save: report PDF"] = time.perf_counter() - start
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


def _target(key: str) -> float | None:
    if key == "page load":
        return 2.0
    if key.startswith("page:") or key == "save: report PDF":
        return None
    return 5.0


def markdown(runs: list[dict], bare: list[float], positions: int, loads: list,
             befores: list[dict] | None = None, pages: dict | None = None) -> str:
    best = {k: min(r[k] for r in runs if k in r) for k in runs[0]}
    before = {k: min(r[k] for r in befores if k in r) for k in befores[0]} if befores else {}
    bare_best = min(bare)
    load_text = ", ".join(f"{a:.1f}" for a in loads)
    lines = [f"Run of {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, "
             f"{len(runs)} run(s) (best shown), 1-minute load average {load_text} "
             f"(other people's jobs on the shared machine). Bare: one SimpleITK rigid "
             f"registration of one CBCT of the same patient, {bare_best:.2f} s "
             f"(runs: {', '.join(f'{b:.2f}' for b in bare)}).", ""]
    if pages:
        bare_page = min(x[0] for x in pages["bare"])
        lines += [f"Page loads, {len(pages['bare'])} of each, alternating (best; median): "
                  f"bare trame page {bare_page:.2f} s; "
                  + "; ".join(f"{name}: first step {min(x[0] for x in v):.2f} s "
                              f"({min(x[0] for x in v) / bare_page:.1f} × bare; median "
                              f"{sorted(x[0] for x in v)[len(v) // 2]:.2f}), every step "
                              f"{min(x[1] for x in v):.2f} s (median "
                              f"{sorted(x[1] for x in v)[len(v) // 2]:.2f})"
                              for name, v in pages.items() if name != "bare") + ".", ""]
    head = "| step ({} positions) |{} time (s) | ratio to bare | target |".format(
        positions, " before (s) |" if before else "")
    lines += [head, "|---|---|---|---|" + ("---|" if before else "")]
    for key, value in best.items():
        target = _target(key)
        was = (f" {before[key]:.2f} |" if key in before else " – |") if before else ""
        goal = "–" if target is None else \
            f"≤ {target:g} s{'' if value <= target else ' (not met)'}"
        lines.append(f"| {key} |{was} {value:.2f} | {value / bare_best:.2f} | {goal} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--markdown", help="replace the table between the markers in FILE")
    parser.add_argument("--before", help="a TAREPlanner source folder to time as 'before'")
    parser.add_argument("--page-loads", type=int, default=5,
                        help="page loads of each server and of the bare page (alternating)")
    args = parser.parse_args(argv)
    runs, befores, bare, loads = [], [], [], []
    trees = {"after": None, **({"before": args.before} if args.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        servers = {}
        try:
            for name, tree in trees.items():
                (tmp / f"page-{name}").mkdir()
                servers[name] = _start_server(tmp / f"page-{name}", tmp / f"page-{name}.log",
                                              tree)
            servers["bare"] = _start_server(tmp, tmp / "bare.log", bare=True)
            pages = page_loads({name: s[1] for name, s in servers.items()}, args.page_loads)
        finally:
            for process, _, log in servers.values():
                process.terminate()
                process.wait(timeout=20)
                log.close()
        for run in range(args.repeat):
            for name, tree in trees.items():
                data = tmp / f"data{run}-{name}"
                data.mkdir()
                process, url, log = _start_server(data, tmp / f"serve{run}-{name}.log", tree)
                try:
                    loads.append(os.getloadavg()[0])
                    (runs if name == "after" else befores).append(drive(url, args.positions))
                finally:
                    process.terminate()
                    try:
                        process.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                    log.close()
                for key, value in (runs if name == "after" else befores)[-1].items():
                    print(f"{name:6s} {key:24s} {value:6.2f} s")
            bare.append(bare_registration(args.positions))
            print(f"{'bare':31s} {bare[-1]:6.2f} s (one SimpleITK registration)", flush=True)
    text = markdown(runs, bare, args.positions, loads, befores, pages)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "before": befores, "bare_s": bare,
                                               "pages": pages, "load": loads,
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

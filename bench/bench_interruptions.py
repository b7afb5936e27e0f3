"""Benchmark of spot reclaims: a campaign of injected notices at random moments.

One real stack (:class:`devcluster.demo.workbench.Workbench`: devcluster in run
mode with its simulated time ``--time-factor`` times real, the hub, slapd) and
headless Chromium with bob's JupyterLab open. Each reclaim, at a random moment
of a session (seeded): bob's server is Ready, he waits a random while, types a
random amount into a notebook cell and at the end of a text file (which holds a
random amount already saved) and saves neither; a random pause later a spot
interruption notice reaches his node (:func:`tests.e2e.session_support.spot_notice`,
the operator's drill). Measured per reclaim, in real seconds from the notice
(the taint's ``timeAdded``, bounded by when the drill was sent):

- ``notice_to_shown_s``: JupyterLab shows the notification (the browser's clock);
- ``notice_to_saved_s``: the extension's report to the server of what it saved
  (``GET <server>/wbspawner/notices/<id>``; JupyterLab's own moment when the
  server was gone before the report could be read);
- ``notice_to_stopped_s``: the server pod is gone from the API;
- ``stop_to_reason_s``: the hub's home page says why (the hub saw the stop);
- ``stop_to_ready_s``: bob's next start (spawn form, as a user does) is Ready;
- ``typed_bytes`` and ``lost_bytes``: what he typed, and what of it is not on
  his home volume once the pod is gone (compared byte for byte; must be 0).

The notice must be acted on within AWS's two minutes (``budget_s``, real time
on EKS: every step from notice to stop runs in real time here too, but for the
pod's grace period, which devcluster runs in simulated time and so cuts the
``preStop`` hook's wait short: see ``NOTES``). The steps of a next start that
devcluster simulates (node boot, image pull) are scaled: the result gives the
next start in simulated seconds beside the real ones. The default time factor
(0.05) keeps a 20-reclaim run near ten minutes and the grace period at 1.5 s.

Baseline, in the same run: one reclaim with the notice channel off (JupyterLab's
event stream answered by nothing, as before issue 18): what is lost then.

Writes ``bench/results/interruptions.json``.
Run: ``.venv/bin/python bench/bench_interruptions.py [--reclaims N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import string
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "interruptions.json"
if str(REPO) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(REPO))

from provenance import commit, machine  # noqa: E402

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

    from devcluster.demo.workbench import Workbench

USER = "bob"
SIZE = "medium"
POOL = "cpu16"
ZONE = "us-east-1a"
BUDGET_S = 120.0
"""AWS's spot interruption notice: the instance goes two minutes after it."""
NODE_BOOT_S = 180.0
IMAGE_PULL_S = 60.0
GRACE_S = 30.0
"""The server pod's termination grace period (Kubernetes' default; the hook's
wait fits in it). devcluster's kubelet runs it in simulated seconds, as it runs
every duration: ``time_factor`` × 30 s real."""
CAPACITY_LABEL = "wbspawner.io/capacity"
ZONE_LABEL = "topology.kubernetes.io/zone"
WORDS = string.ascii_lowercase + string.digits
SHOWN_JS = """() => {
  const toast = [...document.querySelectorAll('.Toastify__toast')]
    .find(t => t.textContent.includes('This server'));
  return toast ? Date.now() / 1000 : null;
}"""
SAVED_JS = """() => {
  const toast = [...document.querySelectorAll('.Toastify__toast')]
    .find(t => /This server.*(saved|Nothing was left|Could not save)/s
      .test(t.textContent));
  return toast ? Date.now() / 1000 : null;
}"""


# --------------------------------------------------------------- the plan (pure)
@dataclass(frozen=True)
class Moment:
    """One reclaim's random moment of a session."""

    index: int
    idle_s: float
    """How long bob's server runs before he starts typing."""
    notebook_typed: str
    """What he types into the notebook's cell (never saved)."""
    text_saved: str
    """What his text file already holds."""
    text_typed: str
    """What he types at its end (never saved)."""
    pause_s: float
    """How long after the typing the notice comes."""
    channel: bool = True
    """Whether JupyterLab gets notices (the baseline has it off)."""

    @property
    def notebook(self) -> str:
        return f"reclaim-{self.index:02d}.ipynb"

    @property
    def text_file(self) -> str:
        return f"reclaim-{self.index:02d}.txt"


def _words(rng: random.Random, chars: int) -> str:
    """``chars`` characters of lower-case words and spaces (nothing an editor
    completes or indents)."""
    out: list[str] = []
    while sum(map(len, out)) < chars:
        out.append("".join(rng.choices(WORDS, k=rng.randint(2, 9))) + " ")
    return "".join(out)[:chars].rstrip() or "x"


def plan(
    seed: int,
    count: int,
    *,
    max_idle_s: float = 8.0,
    max_chars: int = 300,
    max_pause_s: float = 3.0,
) -> list[Moment]:
    """Return ``count`` random moments of sessions (the same for the same seed)."""
    rng = random.Random(seed)
    return [
        Moment(
            index=i,
            idle_s=round(rng.uniform(0, max_idle_s), 2),
            notebook_typed=_words(rng, rng.randint(1, max_chars)),
            text_saved=_words(rng, rng.randint(0, max_chars)) + "\n",
            text_typed=_words(rng, rng.randint(1, max_chars)),
            pause_s=round(rng.uniform(0, max_pause_s), 2),
        )
        for i in range(1, count + 1)
    ]


def lost_bytes(typed: str, saved: str) -> int:
    """Bytes of ``typed`` that ``saved`` lacks.

    Typing is in order, so what an autosave may have kept is a prefix: the
    bytes after the longest prefix of ``typed`` found in ``saved`` are lost.
    """
    if typed in saved:
        return 0
    low, high = 0, len(typed)  # the longest prefix found (found prefixes nest)
    while low < high:
        mid = (low + high + 1) // 2
        if typed[:mid] in saved:
            low = mid
        else:
            high = mid - 1
    return len(typed.encode()) - len(typed[:low].encode())


def notebook_source(text: str) -> str:
    """The first cell's source of a notebook file's JSON ('' when unreadable)."""
    try:
        cells = json.loads(text)["cells"]
        source = cells[0]["source"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return "".join(source) if isinstance(source, list) else str(source)


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """p50, p90 and max of the values measured (``None``: not measured)."""
    got = sorted(v for v in values if v is not None)
    if not got:
        return {"n": 0, "p50": None, "p90": None, "max": None}
    p90 = (
        statistics.quantiles(got, n=10, method="inclusive")[8]
        if len(got) > 1
        else got[0]
    )
    return {
        "n": len(got),
        "p50": round(statistics.median(got), 2),
        "p90": round(p90, 2),
        "max": round(got[-1], 2),
    }


NOTES = (
    "All figures are real seconds unless named simulated. From the notice to the "
    "pod's stop everything runs in real time (JupyterLab, the hook, the hub) "
    "except the pod's grace period, which devcluster's kubelet shortens to "
    "time_factor x 30 s (grace_period_real_s): the preStop hook's wait is cut "
    "there, so notice_to_stopped_s is at most about that, where on EKS the hook "
    "would hold the pod until a few seconds after the save; with the channel off "
    "(baseline) it would wait its 20 s. stop_to_ready_simulated_s puts the node "
    "boot and image pull a next start waited for back at their simulated length."
)
METRICS = (
    "notice_to_shown_s",
    "notice_to_saved_s",
    "notice_to_stopped_s",
    "stop_to_reason_s",
    "stop_to_ready_s",
)


def summarize(records: Sequence[dict[str, Any]], time_factor: float) -> dict[str, Any]:
    """The campaign's figures: each metric's spread, bytes typed and lost."""
    out: dict[str, Any] = {"reclaims": len(records)}
    for metric in METRICS:
        out[metric] = spread([r.get(metric) for r in records])
    simulated = [r.get("stop_to_ready_simulated_s") for r in records]
    out["stop_to_ready_simulated_s"] = spread(simulated)
    out["typed_bytes"] = sum(r["typed_bytes"] for r in records)
    out["lost_bytes"] = sum(r["lost_bytes"] for r in records)
    out["reclaims_losing_bytes"] = sum(1 for r in records if r["lost_bytes"])
    stopped = [r.get("notice_to_stopped_s") for r in records]
    out["stopped_within_budget"] = sum(
        1 for s in stopped if s is not None and s < BUDGET_S
    )
    out["reason_shown"] = sum(1 for r in records if r.get("reason"))
    return out


# ------------------------------------------------------------ one reclaim (I/O)
@dataclass
class Watch:
    """Polls the API from a thread for when the server pod is gone."""

    api: str
    pod_path: str
    pod_gone: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from devcluster.demo.workbench import Kube

        kube = Kube(self.api)  # a session of its own in this thread
        while not self._stop.is_set() and self.pod_gone is None:
            now = time.time()
            try:
                if kube.get(self.pod_path) is None:
                    self.pod_gone = now
            except requests.RequestException:
                pass  # a slow answer: look again
            self._stop.wait(0.1)

    def wait_pod_gone(self, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.pod_gone is None:
            assert time.monotonic() < deadline, "the server pod outlived the reclaim"
            time.sleep(0.1)
        return self.pod_gone

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def write_files(home: Path, moment: Moment) -> None:
    """Put the session's notebook and text file on bob's home (writable by him)."""
    from tests.lab_support import EMPTY_NOTEBOOK

    for name, text in (
        (moment.notebook, json.dumps(EMPTY_NOTEBOOK)),
        (moment.text_file, moment.text_saved),
    ):
        path = home / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o666)


def type_unsaved(page: Page, moment: Moment, url: str) -> None:
    """Open the session's files in JupyterLab and type into both, saving neither."""
    from playwright.sync_api import expect

    from tests.e2e.session_support import wait_lab

    # ?reset: a fresh workspace, not every earlier session's tabs restored
    page.goto(f"{url}/user/{USER}/lab/tree/{moment.notebook}?reset")
    wait_lab(page)
    cell = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
    cell.wait_for()
    page.wait_for_timeout(moment.idle_s * 1000)
    cell.click()
    page.keyboard.type(moment.notebook_typed)
    listing = page.locator(".jp-DirListing-content")
    listing.get_by_text(moment.text_file, exact=True).dblclick()
    editor = page.locator(".jp-FileEditor .cm-content").first
    editor.wait_for()
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(moment.text_typed)
    dirty = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty")
    expect(dirty).to_have_count(2)  # both unsaved
    page.wait_for_timeout(moment.pause_s * 1000)


def saved_report(context: BrowserContext, url: str, notice_id: str) -> float | None:
    """When a tab reported its save to the server (``None``: no report read)."""
    path = f"{url}/user/{USER}/wbspawner/notices/{notice_id}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            response = context.request.get(path, max_redirects=0, timeout=5000)
        except Exception:  # noqa: BLE001 - the server stopping: no answer
            return None
        if not response.ok:
            return None
        reports = response.json().get("reports") or []
        if reports:
            return float(min(r["at"] for r in reports))
        time.sleep(0.1)
    return None


def browser_time(page: Page, script: str, timeout_ms: float) -> float | None:
    """The browser's clock when ``script`` first returns a value (``None``: never)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        return float(page.wait_for_function(script, timeout=timeout_ms).json_value())
    except PlaywrightTimeout:
        return None


def reclaim(
    workbench: Workbench,
    context: BrowserContext,
    page: Page,
    moment: Moment,
    restart: bool = True,
) -> dict[str, Any]:
    """Run one session to its reclaim (and the next start); what was measured."""
    from devcluster.demo.workbench import NAMESPACE
    from tests.e2e.session_support import (
        home_dir,
        node_labels,
        server_pod,
        spot_notice,
        start_server,
        wait_stop_reason,
    )

    assert workbench.cluster is not None and workbench.kube is not None
    home = home_dir(workbench, USER)
    write_files(home, moment)
    type_unsaved(page, moment, workbench.url)
    pod = server_pod(workbench, USER)
    assert pod is not None, "bob's server has no pod"
    uid = pod["metadata"]["uid"]
    node = pod["spec"]["nodeName"]
    capacity = node_labels(workbench, node).get(CAPACITY_LABEL, "on-demand")

    notice = spot_notice(workbench, USER)
    watch = Watch(
        workbench.cluster.api, f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-{USER}"
    ).start()
    try:
        shown = saved_lab = None
        if moment.channel:
            shown = browser_time(page, SHOWN_JS, 15_000)
            saved_lab = browser_time(page, SAVED_JS, 30_000)
        reported = saved_report(context, workbench.url, f"stop-{uid}")
        stopped = watch.wait_pod_gone(120)
    finally:
        watch.stop()
    notebook = home / moment.notebook
    text = home / moment.text_file
    nb_saved = notebook_source(notebook.read_text(encoding="utf-8"))
    text_now = text.read_text(encoding="utf-8") if text.exists() else ""
    lost = lost_bytes(moment.notebook_typed, nb_saved) + lost_bytes(
        moment.text_typed, text_now[len(moment.text_saved) :]
    )
    if not text_now.startswith(moment.text_saved):  # what was saved before, lost
        lost += len(moment.text_saved.encode())
    saved = reported if reported is not None else saved_lab
    record: dict[str, Any] = {
        "index": moment.index,
        "channel": moment.channel,
        "idle_s": moment.idle_s,
        "pause_s": moment.pause_s,
        "node": notice.node,
        "capacity": capacity,
        "taint": notice.taint,
        "time_added": notice.time_added,
        "notice_to_shown_s": _since(notice.at, shown),
        "notice_to_saved_s": _since(notice.at, saved),
        "saved_from": _saved_from(reported, saved_lab),
        "notice_to_stopped_s": _since(notice.at, stopped),
        "typed_bytes": len(moment.notebook_typed.encode())
        + len(moment.text_typed.encode()),
        "lost_bytes": lost,
    }
    if not restart:
        return record
    reason = wait_stop_reason(page, workbench, 90, every_s=0.5)
    record["reason"] = reason
    record["stop_to_reason_s"] = _since(stopped, time.time())
    spawned = time.time()
    ready = start_server(page, workbench, USER, SIZE)
    record["stop_to_ready_s"] = _since(stopped, ready)
    record.update(_next_start(workbench, spawned, ready - stopped))
    return record


def _saved_from(reported: float | None, toast: float | None) -> str | None:
    """Which moment ``notice_to_saved_s`` is (``None``: nothing was saved)."""
    if reported is not None:
        return "report"
    return None if toast is None else "toast"


def _since(start: float, end: float | None) -> float | None:
    return None if end is None else round(end - start, 3)


def _next_start(workbench: Workbench, spawned: float, real_s: float) -> dict[str, Any]:
    """Where the next start ran, and its wait in simulated seconds.

    devcluster runs a node's boot and an image pull in ``time_factor`` × their
    simulated seconds; a start that waited for its node to become Ready after
    the spawn form was sent (``spawned``) spent both, any other the pull (the
    node is new to the image: the last one went with the reclaim).
    """
    from tests.e2e.session_support import node_labels, server_pod

    pod = server_pod(workbench, USER) or {}
    node = (pod.get("spec") or {}).get("nodeName") or ""
    labels = node_labels(workbench, node) if node else {}
    ready = _node_ready_at(workbench, node)
    booted = ready is not None and ready >= spawned - 1  # whole seconds
    scaled = (NODE_BOOT_S if booted else 0.0) + IMAGE_PULL_S
    return {
        "next_node": node,
        "next_capacity": labels.get(CAPACITY_LABEL, "on-demand"),
        "next_zone": labels.get(ZONE_LABEL, ""),
        "next_waited_for_boot": booted,
        "stop_to_ready_simulated_s": round(
            real_s + scaled * (1 - workbench.time_factor), 3
        ),
    }


def _node_ready_at(workbench: Workbench, node: str) -> float | None:
    """When a node became Ready (``time.time()``; ``None``: unknown)."""
    if not node or workbench.kube is None:
        return None
    found = workbench.kube.get(f"/api/v1/nodes/{node}") or {}
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("lastTransitionTime"):
            return _epoch(condition["lastTransitionTime"])
    return None


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------ the campaign
def campaign(
    workbench: Workbench,
    browser: Browser,
    moments: Sequence[Moment],
    baseline: Moment | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Run the reclaims (and the baseline) on a running stack; every record."""
    from tests.e2e.browser_support import new_context
    from tests.e2e.session_support import sign_in, start_server

    records: list[dict[str, Any]] = []
    with _context(browser, new_context) as context:
        page = context.new_page()
        sign_in(page, workbench, USER)
        first_ready_s = time.monotonic()
        start_server(page, workbench, USER, SIZE)
        first_ready_s = time.monotonic() - first_ready_s
        for moment in moments:
            record = reclaim(workbench, context, page, moment)
            records.append(record)
            progress(json.dumps(record))
    base = None
    if baseline is not None:
        with _context(browser, new_context) as context:
            # the notice channel off: JupyterLab's event stream gets nothing
            context.route_web_socket(re.compile(r"/api/events/subscribe"), _silent)
            page = context.new_page()
            sign_in(page, workbench, USER)
            base = reclaim(workbench, context, page, baseline, restart=False)
            progress(json.dumps(base))
    return {
        "first_start_s": round(first_ready_s, 2),
        "records": records,
        "baseline": base,
    }


def _silent(socket: Any) -> None:
    """A web socket the page opens and that never says anything."""


@contextlib.contextmanager
def _context(
    browser: Browser, make: Callable[[Browser], BrowserContext]
) -> Iterator[BrowserContext]:
    context = make(browser)
    try:
        yield context
    finally:
        context.close()


def baseline_moment(seed: int, index: int) -> Moment:
    """The baseline's session: like the campaign's, with the channel off."""
    moment = plan(seed + 1, 1)[0]
    return Moment(
        index=index,
        idle_s=moment.idle_s,
        notebook_typed=moment.notebook_typed,
        text_saved=moment.text_saved,
        text_typed=moment.text_typed,
        pause_s=moment.pause_s,
        channel=False,
    )


def result(
    run: dict[str, Any], *, seed: int, time_factor: float, wall_s: float
) -> dict[str, Any]:
    """The results file's content."""
    base = run["baseline"]
    return {
        "benchmark": "interruptions",
        "commit": commit(),
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seed": seed,
        "time_factor": time_factor,
        "user": USER,
        "size": SIZE,
        "simulated": {
            "spot_notice_s": BUDGET_S,
            "node_boot_s": NODE_BOOT_S,
            "image_pull_s": IMAGE_PULL_S,
        },
        "budget_s": BUDGET_S,
        "grace_period_real_s": round(GRACE_S * time_factor, 3),
        "notes": NOTES,
        "wall_s": round(wall_s, 1),
        "first_start_s": run["first_start_s"],
        "summary": summarize(run["records"], time_factor),
        "baseline_channel_off": None
        if base is None
        else {
            "typed_bytes": base["typed_bytes"],
            "lost_bytes": base["lost_bytes"],
            "notice_to_stopped_s": base["notice_to_stopped_s"],
        },
        "reclaims": run["records"],
        "baseline_record": base,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reclaims", type=int, default=20)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--time-factor", type=float, default=0.05)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from devcluster.demo.workbench import Workbench
    from devcluster.services.procs import free_port
    from tests.e2e.browser_support import launch_chromium

    moments = plan(args.seed, args.reclaims)
    baseline = (
        None if args.no_baseline else baseline_moment(args.seed, args.reclaims + 1)
    )
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-interruptions-") as tmp:
        stack = Workbench(
            Path(tmp),
            time_factor=args.time_factor,
            pools=[POOL],
            zones=[ZONE],
            public_port=free_port(),
            warmer=False,
        )
        with stack as workbench, launch_chromium() as browser:
            print(f"stack up at {workbench.url} in {time.monotonic() - began:.0f} s")
            run = campaign(workbench, browser, moments, baseline, progress=print)
    out = result(
        run,
        seed=args.seed,
        time_factor=args.time_factor,
        wall_s=time.monotonic() - began,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["summary"], indent=1))
    print(f"wrote {args.out}")
    lost = out["summary"]["lost_bytes"]
    if lost:
        print(f"typed work lost: {lost} bytes", file=sys.stderr)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

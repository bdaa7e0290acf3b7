"""The viewer as a person uses it: ``runstore ui``, the installed command, serving a real
database of each backend, read by a real headless Chromium through its chromedriver.

It picks two runs on the list and compares them -- each change with its interval and
p-value, the significant ones marked, at 95% and then at 99% -- reads a run's figures,
histograms (cost among them, fetched by the page's script after the page) and results
page by page, and opens results; it follows a dataset's trend from the list, reads its
line charts and follows a point to its run; it narrows the list by clicking tag chips
and a run's metadata. Some stored texts are script (a run id,
name, description, tags and metadata, an output, an error, a score label, an item id):
every page must show them as text and never run them -- escaped by the templates, and
blocked by the Content-Security-Policy besides.

Chromium and chromedriver are Debian's ``chromium`` and ``chromium-driver`` packages
(selenium is told where they are, so it downloads nothing); without them the test skips
with the reason -- except under ``CI=true``, where it fails. Without selenium or the
``ui`` extra (the run on the dependency floors installs neither) it skips.

With ``RUNSTORE_SCREENSHOTS=DIR`` the SQLite case saves ``viewer-run.png`` and
``viewer-compare.png`` there (the images in ``docs/``).
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from conftest import IN_CI
from runstore import AddRunResultInput
from runstore import AddScoreInput
from runstore import SqlRunsStorage
from runstore import TargetType
from runstore.testing.inputs import FrozenClock
from runstore.testing.servers import stop_process

pytest.importorskip("uvicorn", reason="the viewer needs the ui extra")
pytest.importorskip("selenium", reason="driving Chromium needs selenium (the dev extra)")

from selenium.common.exceptions import WebDriverException
from selenium.webdriver import Chrome
from selenium.webdriver import ChromeOptions
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS_ENVVAR = "RUNSTORE_SCREENSHOTS"

HOSTILE_IMG = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_SCRIPT = "<script>document.title='pwned'</script>"
HOSTILE_RUN = f"run {HOSTILE_IMG}{HOSTILE_SCRIPT}"

BASELINE = "support-bot-v12-nightly"
CANDIDATE = "support-bot-v13-nightly"
DATASET = "support-faq"
BASELINE_ITEMS = tuple(range(1, 49))  # 48 results: one page of the run's results
# 53 results, more than a page (50): the dataset grew by six items and lost one
CANDIDATE_ITEMS = tuple(item for item in range(1, 55) if item != 27)
HOSTILE_OUTPUT_ITEM = 47  # the candidate's output, and its relevance's label and explanation
HOSTILE_ERROR_ITEM = 48  # the candidate's error
BASELINE_ERRORS = {9, 22, 35}
CANDIDATE_ERRORS = {22, 41, HOSTILE_ERROR_ITEM}
PAGE_TIMEOUT = 15.0
DROP = "\N{MULTIPLICATION SIGN}"
"""The link that drops a filter of the list."""
MODEL = "gpt-4o-mini"
RUNS = {  # name, tags, prompt version
    BASELINE: ("support bot v12 (nightly)", ["nightly", "support", "v12"], "faq-v3"),
    CANDIDATE: ("support bot v13 (nightly)", ["nightly", "support", "v13"], "faq-v4"),
}
HOSTILE_TAGS = [HOSTILE_IMG, HOSTILE_SCRIPT]
PRICE_IN, PRICE_OUT = 0.15e-6, 0.6e-6
"""What a token costs, read and written."""

QUESTIONS = [
    ("How do I reset my password?", "Open Settings > Security and choose Reset password."),
    ("Can I change the email address on my account?", "Yes: Settings > Profile > Email."),
    ("What payment methods do you accept?", "Visa, Mastercard, American Express and SEPA."),
    ("How do I cancel my subscription?", "Go to Billing and choose Cancel plan."),
    ("Is there a student discount?", "Students get 50% off with a valid university email."),
    ("How long does shipping take to Canada?", "Usually 5 to 8 business days."),
    ("Can I export my data as CSV?", "Yes: Reports > Export, then pick CSV."),
    ("Why was my card declined?", "Your bank refused the charge; check the card's limit."),
    ("How do I enable two-factor authentication?", "Settings > Security > Two-factor."),
    ("Where can I download invoices?", "Billing > Invoices lists every invoice as a PDF."),
    ("Do you offer refunds for annual plans?", "Within 30 days of purchase, in full."),
    ("How do I add a team member?", "Team > Invite, then enter their email address."),
]
LOCALES = ["en-US", "en-GB", "de-DE", "fr-FR"]
REWORDED = " If that does not help, our support team answers within one business day."


def _item_id(item: int) -> str:
    return f"faq-{item:03d}"


def _error(item: int, candidate: bool) -> str:
    if candidate and item == HOSTILE_ERROR_ITEM:
        return HOSTILE_SCRIPT
    if candidate:
        return "RateLimitError: 429 Too Many Requests (retry after 2 s)"
    return "ConnectionResetError: the model server closed the connection"


def _reworded(item: int) -> bool:
    return item % 3 == 0


def _output(item: int, candidate: bool) -> dict[str, object]:
    if candidate and item == HOSTILE_OUTPUT_ITEM:
        return {"answer": HOSTILE_IMG}
    answer = QUESTIONS[item % len(QUESTIONS)][1]
    sources = [f"kb/{item % 7 + 1:02d}"]
    if candidate and _reworded(item):
        answer += REWORDED
        sources.append(f"kb/{item % 5 + 11:02d}")
    return {"answer": answer, "sources": sources}


@dataclass
class Expected:
    """What the pages must show, counted from the data as it was written."""

    results: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    input_tokens: dict[str, int] = field(default_factory=dict)
    output_tokens: dict[str, int] = field(default_factory=dict)
    cost_per_result: dict[str, float] = field(default_factory=dict)
    cost_mean_delta: float = 0.0
    tokens_mean_delta: float = 0.0
    both: int = 0
    only_in_baseline: int = 0
    only_in_candidate: int = 0
    errors_fixed: int = 0
    errors_introduced: int = 0


def _scores(item: int, candidate: bool) -> dict[str, float]:
    """Judged like a real run: the same answer scores about the same in both runs; a
    reworded answer (every third item) mostly better; every seventh a little worse."""
    draw = random.Random(item)
    accuracy, relevance = draw.betavariate(7, 2.2), draw.betavariate(6, 2)
    if candidate and _reworded(item):
        accuracy += draw.uniform(0.02, 0.15)
        relevance += draw.uniform(0.0, 0.12)
    elif candidate and item % 7 == 0:
        accuracy -= draw.uniform(0.05, 0.2)
    return {
        "accuracy": round(min(max(accuracy, 0.0), 1.0), 2),
        "relevance": round(min(max(relevance, 0.0), 1.0), 2),
    }


def _results(
    run_id: str, items: Sequence[int], errors: set[int], candidate: bool, started: datetime
) -> list[AddRunResultInput]:
    """A run's results: benign answers first in execution order, the hostile last (so
    the first page of the run, as the screenshots show it, is realistic)."""
    order = sorted(items, key=lambda item: item in (HOSTILE_OUTPUT_ITEM, HOSTILE_ERROR_ITEM))
    inputs = []
    for position, item in enumerate(order):
        draw = random.Random(item)
        failed = item in errors
        latency = draw.lognormvariate(math.log(900), 0.3) * (0.85 if candidate else 1.0)
        if failed:
            latency = draw.uniform(150, 400)
        start = started + timedelta(seconds=1.3 * position)
        question, answer = QUESTIONS[item % len(QUESTIONS)]
        read = draw.randint(180, 420)
        written = 0 if failed else draw.randint(40, 160) + (30 if candidate else 0)
        inputs.append(
            AddRunResultInput(
                run_id=run_id,
                item_id=_item_id(item),
                item_version=started - timedelta(days=3),
                input={"question": question, "locale": LOCALES[item % len(LOCALES)]},
                output=None if failed else _output(item, candidate),
                expected_output={"answer": answer},
                latency=round(latency, 1),
                error=_error(item, candidate) if failed else None,
                started_at=start,
                completed_at=start + timedelta(milliseconds=latency),
                retry_count=1 if failed else 0,
                scores=None if failed else _scores(item, candidate),
                input_tokens=read,
                output_tokens=written,
                # a failed call is not billed; the candidate's model is cheaper to read
                cost=None
                if failed
                else (read * PRICE_IN + written * PRICE_OUT) * (0.6 if candidate else 1.0),
                trace_id=f"{run_id}/{_item_id(item)}",
            )
        )
    return inputs


def _fill(url: str) -> Expected:
    """Migrate the database and write three runs through the public API: a baseline and
    a candidate of the support bot, and a small run whose every text is script."""
    started = datetime(2026, 1, 14, 2, 0, tzinfo=UTC)
    expected = Expected()
    clock = FrozenClock(started - timedelta(days=1))  # the hostile run, listed last
    with SqlRunsStorage(url, clock=clock) as storage:
        storage.init()
        storage.create_run(
            {
                "id": HOSTILE_RUN,
                "dataset_id": HOSTILE_SCRIPT,
                "dataset_version": started,
                "target_type": TargetType.AGENT,
                "target_id": HOSTILE_IMG,
                "total_items": 2,
                "name": f"name {HOSTILE_IMG}",
                "description": f"description {HOSTILE_SCRIPT}",
                "tags": HOSTILE_TAGS,
                "metadata": {"model": HOSTILE_SCRIPT, HOSTILE_IMG: HOSTILE_SCRIPT},
            }
        )
        hostile = storage.add_results(
            [
                AddRunResultInput(
                    run_id=HOSTILE_RUN,
                    item_id=text,
                    item_version=started,
                    input={"question": text},
                    output={"answer": text},
                    latency=100.0 + index,
                    error=text,
                    started_at=started + timedelta(seconds=index),
                    completed_at=started + timedelta(seconds=index + 1),
                )
                for index, text in enumerate([HOSTILE_IMG, HOSTILE_SCRIPT])
            ],
            update_counts=True,
        )
        storage.add_scores(
            [
                AddScoreInput(
                    result_id=result.id,
                    name="accuracy",
                    value=0.5,
                    label=HOSTILE_SCRIPT,
                    explanation=HOSTILE_IMG,
                )
                for result in hostile
            ]
        )
        for run_id, items, errors, candidate, day in [
            (BASELINE, BASELINE_ITEMS, BASELINE_ERRORS, False, 0),
            (CANDIDATE, CANDIDATE_ITEMS, CANDIDATE_ERRORS, True, 1),
        ]:
            run_started = started + timedelta(days=day)
            clock.now = run_started - timedelta(seconds=5)
            name, tags, prompt = RUNS[run_id]
            storage.create_run(
                {
                    "id": run_id,
                    "dataset_id": DATASET,
                    "dataset_version": started - timedelta(days=3),
                    "target_type": TargetType.AGENT,
                    "target_id": run_id.removesuffix("-nightly"),
                    "total_items": len(items),
                    "name": name,
                    "description": f"The nightly evaluation of {name.split(' (')[0]} "
                    f"on the support FAQ, prompt {prompt}.",
                    "tags": tags,
                    "metadata": {"model": MODEL, "prompt": prompt, "temperature": 0.2},
                }
            )
            inputs = _results(run_id, items, errors, candidate, run_started)
            written = storage.add_results(inputs, update_counts=True)
            storage.update_run(
                {
                    "id": run_id,
                    "status": "completed",
                    "started_at": run_started,
                    "completed_at": max(result.completed_at for result in written),
                }
            )
            expected.results[run_id] = len(items)
            expected.failed[run_id] = len(errors & set(items))
            expected.input_tokens[run_id] = sum(i.input_tokens or 0 for i in inputs)
            expected.output_tokens[run_id] = sum(i.output_tokens or 0 for i in inputs)
            costs = [i.cost for i in inputs if i.cost is not None]
            expected.cost_per_result[run_id] = sum(costs) / len(costs)
        hostile_output = storage.list_results(
            {"run_id": CANDIDATE, "item_id": _item_id(HOSTILE_OUTPUT_ITEM)}
        )
        storage.add_scores(
            [
                AddScoreInput(
                    result_id=hostile_output.results[0].id,
                    name="relevance",
                    value=0.8,
                    label=HOSTILE_SCRIPT,
                    explanation=HOSTILE_IMG,
                )
            ],
            replace=True,
        )
    both = set(BASELINE_ITEMS) & set(CANDIDATE_ITEMS)
    expected.both = len(both)
    expected.only_in_baseline = len(set(BASELINE_ITEMS) - set(CANDIDATE_ITEMS))
    expected.only_in_candidate = len(set(CANDIDATE_ITEMS) - set(BASELINE_ITEMS))
    expected.errors_fixed = len(both & (BASELINE_ERRORS - CANDIDATE_ERRORS))
    expected.errors_introduced = len(both & (CANDIDATE_ERRORS - BASELINE_ERRORS))
    by_item = {
        (run_id, result.item_id): result
        for run_id, items, errors, candidate in [
            (BASELINE, BASELINE_ITEMS, BASELINE_ERRORS, False),
            (CANDIDATE, CANDIDATE_ITEMS, CANDIDATE_ERRORS, True),
        ]
        for result in _results(run_id, items, errors, candidate, started)
    }
    pairs = [(by_item[BASELINE, _item_id(i)], by_item[CANDIDATE, _item_id(i)]) for i in both]
    priced = [(b.cost, c.cost) for b, c in pairs if b.cost is not None and c.cost is not None]
    expected.cost_mean_delta = sum(c - b for b, c in priced) / len(priced)
    expected.tokens_mean_delta = sum(
        (c.input_tokens or 0)
        + (c.output_tokens or 0)
        - (b.input_tokens or 0)
        - (b.output_tokens or 0)
        for b, c in pairs
    ) / len(pairs)
    return expected


# -- the server and the browser -------------------------------------------------------------


def _first_line(stream: IO[str], timeout: float) -> str:
    """The first line the server prints; empty if it prints none within ``timeout``
    seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().strip() if ready else ""


@pytest.fixture
def viewer(empty_url: str, tmp_path: Path) -> Iterator[tuple[str, Expected]]:
    """``runstore ui`` -- the command installed next to this Python -- on a filled
    database of each backend: its address, and what its pages must show."""
    expected = _fill(empty_url)
    command = Path(sys.executable).with_name("runstore")
    errors = tmp_path / "ui.stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [str(command), "ui", "--url", empty_url, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert process.stdout is not None
        address = _first_line(process.stdout, PAGE_TIMEOUT)
        assert address.startswith("http://127.0.0.1:"), f"{address!r}; {errors.read_text()}"
        yield address, expected
    finally:
        stop_process(process)


def _browser_needed() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        reason = f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(f"Chromium and its driver are required in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Chrome]:
    """Debian's headless Chromium, its console kept (for Content-Security-Policy
    violations)."""
    _browser_needed()
    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


# -- what a person sees ---------------------------------------------------------------------


_LEFT = "return window.runstoreLeft === undefined && document.readyState === 'complete'"
"""True once the page marked by ``window.runstoreLeft`` is gone (a new document has a new
window) and the new one has loaded."""


def _follow(driver: Chrome, link: WebElement) -> None:
    """Click and wait for the page it leads to.

    The old page is marked on its window, and the wait is for a window without the mark:
    asking an element of the old page whether it is stale races the navigation (Chrome
    may answer that its node "does not belong to the document", an error of its own,
    while the page is being replaced). Errors while the next page loads are ignored.
    """
    driver.execute_script("window.runstoreLeft = true")
    link.click()
    wait = WebDriverWait(driver, PAGE_TIMEOUT, ignored_exceptions=(WebDriverException,))
    wait.until(lambda shown: shown.execute_script(_LEFT))


def _text(driver: Chrome, selector: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, selector).text


def _rows(driver: Chrome, table: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, f"{table} > tbody > tr")


def _pairs(driver: Chrome, selector: str) -> dict[str, str]:
    """A table of ``<th>name</th><td>value</td>`` rows, as shown."""
    return {
        row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
        for row in driver.find_elements(By.CSS_SELECTOR, f"{selector} table.pairs tr")
    }


def _inert(driver: Chrome, title: str) -> None:
    """Nothing stored ran: the title is the page's own, no element came from stored text
    (no image; every script is a file of the viewer's), and the console shows no
    Content-Security-Policy violation (which an injected script would have caused)."""
    assert driver.title == title
    assert driver.find_elements(By.TAG_NAME, "img") == []
    scripts = driver.execute_script(
        "return Array.from(document.scripts, s => s.getAttribute('src'))"
    )
    assert "/static/viewer.js" in scripts
    assert all(source and source.startswith("/static/") for source in scripts), scripts
    violations = [
        entry["message"]
        for entry in driver.get_log("browser")  # type: ignore[no-untyped-call]
        if "Content Security Policy" in entry["message"]
        or "Content-Security-Policy" in entry["message"]
    ]
    assert violations == []


def _screenshot(driver: Chrome, name: str) -> None:
    folder = os.environ.get(SCREENSHOTS_ENVVAR)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0)")
        assert driver.save_screenshot(str(Path(folder) / name))


def _listed(driver: Chrome) -> list[str]:
    """The ids of the runs the list shows, in order."""
    return [row.find_element(By.CSS_SELECTOR, "td.run .id").text for row in _rows(driver, "#runs")]


def _chips(row: WebElement) -> list[str]:
    return [chip.text for chip in row.find_elements(By.CSS_SELECTOR, "a.tag")]


def _query(driver: Chrome) -> dict[str, list[str]]:
    return parse_qs(urlsplit(driver.current_url).query)


def _runs_list(driver: Chrome, address: str, expected: Expected | None = None) -> None:
    """The list: each run's name over its id, its description, its tags as chips, and
    its cost per result."""
    driver.get(address)
    _inert(driver, "Runs · runstore")
    listed = _text(driver, "#runs")
    for run_id in (BASELINE, CANDIDATE, HOSTILE_RUN):
        assert run_id in listed
    assert _listed(driver) == [CANDIDATE, BASELINE, HOSTILE_RUN]  # newest first
    rows = _rows(driver, "#runs")
    names = [row.find_element(By.CSS_SELECTOR, "td.run a.name").text for row in rows]
    assert names == [RUNS[CANDIDATE][0], RUNS[BASELINE][0], f"name {HOSTILE_IMG}"]
    assert [_chips(row) for row in rows] == [RUNS[CANDIDATE][1], RUNS[BASELINE][1], HOSTILE_TAGS]
    for chip in rows[0].find_elements(By.CSS_SELECTOR, "a.tag"):  # drawn as chips
        assert chip.value_of_css_property("border-radius") == "9px"
    assert rows[2].find_element(By.CSS_SELECTOR, ".description").text == (
        f"description {HOSTILE_SCRIPT}"
    )
    if expected is not None:
        headers = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#runs th")]
        column = headers.index("cost/result")
        costs = [row.find_elements(By.TAG_NAME, "td")[column].text for row in rows]
        for run_id, shown in zip((CANDIDATE, BASELINE), costs, strict=False):
            assert float(shown) == pytest.approx(expected.cost_per_result[run_id], rel=1e-3)
        assert costs[2] == "-"


def _compare(driver: Chrome, address: str, expected: Expected, screenshots: bool) -> None:
    """Pick the runs with the radio buttons, submit, read the comparison."""
    _runs_list(driver, address, expected)
    driver.find_element(By.CSS_SELECTOR, f'input[name="baseline"][value="{BASELINE}"]').click()
    driver.find_element(By.CSS_SELECTOR, f'input[name="candidate"][value="{CANDIDATE}"]').click()
    _follow(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Compare']"))

    address_bar = urlsplit(driver.current_url)
    assert address_bar.path == "/compare"
    assert parse_qs(address_bar.query) == {"baseline": [BASELINE], "candidate": [CANDIDATE]}
    _inert(driver, f"Compare {BASELINE} and {CANDIDATE} · runstore")
    figures = _pairs(driver, "#comparison")
    assert figures["items in both"] == str(expected.both)
    assert figures["only in baseline"] == str(expected.only_in_baseline)
    assert figures["only in candidate"] == str(expected.only_in_candidate)
    assert figures["errors fixed"] == str(expected.errors_fixed)
    assert figures["errors introduced"] == str(expected.errors_introduced)
    assert figures["latency mean delta"].startswith("-")  # the candidate is faster
    # cheaper, and a little longer
    assert float(figures["cost mean delta"]) == pytest.approx(expected.cost_mean_delta, rel=1e-3)
    assert expected.cost_mean_delta < 0
    assert float(figures["tokens mean delta"]) == pytest.approx(
        expected.tokens_mean_delta, abs=0.05
    )
    assert figures["tokens mean delta"].startswith("+")
    assert _text(driver, "h1") == (
        f"Run {RUNS[CANDIDATE][0]} {CANDIDATE} against {RUNS[BASELINE][0]} {BASELINE}"
    )
    _statistics(driver, "95%")

    items = _rows(driver, "#items")
    every_item = sorted(set(BASELINE_ITEMS) | set(CANDIDATE_ITEMS))
    assert len(items) == 50  # a page of items; the rest behind "Next items"
    shown = [row.find_element(By.TAG_NAME, "td").text.splitlines()[0] for row in items]
    assert shown == [_item_id(item) for item in every_item[:50]]
    assert driver.find_elements(By.LINK_TEXT, "Next items")
    assert _text(driver, "#command") == f"runstore runs compare {BASELINE} {CANDIDATE}"
    # the hostile output (as JSON, its quotes escaped) and error, shown as they are
    table = _text(driver, "#items")
    assert json.dumps(HOSTILE_IMG)[1:-1] in table
    assert HOSTILE_SCRIPT in table
    if screenshots:
        _screenshot(driver, "viewer-compare.png")

    # the intervals at 99% instead: wider, the relevance's gain no longer more than noise
    Select(
        driver.find_element(By.CSS_SELECTOR, '#confidence select[name="confidence"]')
    ).select_by_visible_text("99%")
    _follow(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Recompute']"))
    assert _query(driver) == {
        "baseline": [BASELINE],
        "candidate": [CANDIDATE],
        "confidence": ["0.99"],
    }
    _inert(driver, f"Compare {BASELINE} and {CANDIDATE} · runstore")
    _statistics(driver, "99%")


def _changes(driver: Chrome, table: str) -> dict[str, dict[str, str]]:
    """A table of changes as shown: by its first column, each cell by its header."""
    headers = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, f"{table} th")]
    return {
        cells[0]: dict(zip(headers, cells, strict=True))
        for row in _rows(driver, table)
        for cells in [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")]]
    }


def _statistics(driver: Chrome, level: str) -> None:
    """Each change's interval and p-value, the significant ones marked -- green when
    better, red when worse -- and the gate's command line, at the confidence ``level``."""
    scores, usage = _changes(driver, "#score-deltas"), _changes(driver, "#usage-deltas")
    assert list(scores) == ["accuracy", "relevance"]
    assert list(usage) == ["latency (ms)", "cost"]
    for shown in (*scores.values(), *usage.values()):
        low, high = (float(end) for end in shown[f"{level} CI"].split(" to "))
        assert low < float(shown["delta"]) < high
        assert shown["p-value"] == "<0.001" or 0 < float(shown["p-value"]) <= 1
    # on these runs: a gain in accuracy within noise, one in relevance significant at 95%
    # but not at 99%; faster and cheaper beyond doubt
    assert {name: shown["significance"] for name, shown in (scores | usage).items()} == {
        "accuracy": "not significant",
        "relevance": "significantly better" if level == "95%" else "not significant",
        "latency (ms)": "significantly better",
        "cost": "significantly better",
    }
    for mark in driver.find_elements(By.CSS_SELECTOR, ".mark"):
        assert mark.value_of_css_property("background-color") == "rgba(23, 114, 69, 1)"
        assert mark.value_of_css_property("color") == "rgba(255, 255, 255, 1)"
    confidence = [] if level == "95%" else ["--confidence", f"{float(level[:-1]) / 100:g}"]
    assert _text(driver, "#command").split() == [
        "runstore",
        "runs",
        "compare",
        BASELINE,
        CANDIDATE,
        *confidence,
    ]
    assert _text(driver, "#gate-command").split() == [
        "runstore",
        "runs",
        "gate",
        CANDIDATE,
        "--baseline",
        BASELINE,
        "--min-delta",
        "accuracy=0",
        "--min-delta",
        "relevance=0",
        *confidence,
    ]


def _run_page(driver: Chrome, expected: Expected, screenshots: bool) -> None:
    """From the comparison to the candidate's page: figures, histograms, results."""
    _follow(driver, driver.find_element(By.CSS_SELECTOR, f'h1 a[href="/runs/{CANDIDATE}"]'))
    assert urlsplit(driver.current_url).path == f"/runs/{CANDIDATE}"
    _inert(driver, f"Run {CANDIDATE} · runstore")
    results, failed = expected.results[CANDIDATE], expected.failed[CANDIDATE]
    summary = _pairs(driver, "#summary")
    cost_per_result = summary.pop("cost per result")
    total_cost = summary.pop("total cost")
    assert summary == {
        "results": str(results),
        "succeeded": str(results - failed),
        "failed": str(failed),
        "error rate": f"{failed / results:.1%}",
        "input tokens": str(expected.input_tokens[CANDIDATE]),
        "output tokens": str(expected.output_tokens[CANDIDATE]),
        "priced results": str(results - failed),  # a failed call is not billed
    }
    mean_cost = expected.cost_per_result[CANDIDATE]
    assert float(cost_per_result) == pytest.approx(mean_cost, rel=1e-3)
    assert float(total_cost) == pytest.approx(mean_cost * (results - failed), rel=1e-3)
    assert _text(driver, "#name") == RUNS[CANDIDATE][0]
    assert _text(driver, "#description").endswith("prompt faq-v4.")
    assert [chip.text for chip in driver.find_elements(By.CSS_SELECTOR, "#tags a.tag")] == (
        RUNS[CANDIDATE][1]
    )
    assert _pairs(driver, "#metadata") == {
        "model": MODEL,
        "prompt": "faq-v4",
        "temperature": "0.2",
    }
    assert [row.find_element(By.TAG_NAME, "td").text for row in _rows(driver, "#scores")] == [
        "accuracy",
        "relevance",
    ]

    charts = _histograms(driver)
    captions = [chart.find_element(By.TAG_NAME, "figcaption").text for chart in charts]
    assert [caption.rsplit(" (", 1)[0] for caption in captions] == [
        "latency (ms)",
        "cost per result",
        "accuracy",
        "relevance",
    ]
    assert captions[0] == f"latency (ms) ({results} values)"
    assert captions[1] == f"cost per result ({results - failed} values)"
    for chart in charts:
        drawing = chart.find_element(By.TAG_NAME, "svg")
        assert drawing.size["width"] > 0
        assert drawing.size["height"] > 0
        bars = drawing.find_elements(By.CSS_SELECTOR, "rect.bar")
        assert bars
        heights = [
            driver.execute_script("return arguments[0].getBoundingClientRect().height", bar)
            for bar in bars
        ]
        assert max(heights) > 10  # drawn, the fullest bin reaching the top

    assert f"{results} matching results" in _text(driver, "main")
    first_page = _rows(driver, "#results")
    assert len(first_page) == 50
    assert first_page[0].find_element(By.TAG_NAME, "a").text == _item_id(CANDIDATE_ITEMS[0])
    if screenshots:
        _screenshot(driver, "viewer-run.png")

    _follow(driver, driver.find_element(By.LINK_TEXT, "Next page"))
    _inert(driver, f"Run {CANDIDATE} · runstore")
    second_page = _rows(driver, "#results")
    assert len(second_page) == results - 50
    shown = _text(driver, "#results")
    assert json.dumps({"answer": HOSTILE_IMG}, ensure_ascii=False) in shown
    assert HOSTILE_SCRIPT in shown
    assert not driver.find_elements(By.LINK_TEXT, "Next page")

    _follow(driver, driver.find_element(By.LINK_TEXT, _item_id(HOSTILE_OUTPUT_ITEM)))
    _inert(driver, f"Result {driver.current_url.rsplit('/', 1)[1]} · runstore")
    assert _text(driver, "h1") == f"Item {_item_id(HOSTILE_OUTPUT_ITEM)}"
    facts = _pairs(driver, "main")
    assert facts["trace"] == f"{CANDIDATE}/{_item_id(HOSTILE_OUTPUT_ITEM)}"
    read, written = int(facts["input tokens"]), int(facts["output tokens"])
    assert 180 <= read <= 420
    assert float(facts["cost"]) == pytest.approx(
        (read * PRICE_IN + written * PRICE_OUT) * 0.6, rel=1e-3
    )
    assert _text(driver, "#metadata") == "-"
    assert json.dumps(HOSTILE_IMG) in _text(driver, "#output")
    scores = {
        row.find_elements(By.TAG_NAME, "td")[0].text: [
            cell.text for cell in row.find_elements(By.TAG_NAME, "td")[1:]
        ]
        for row in _rows(driver, "#scores")
    }
    assert scores["relevance"] == ["0.8", HOSTILE_SCRIPT, HOSTILE_IMG]
    assert set(scores) == {"accuracy", "relevance"}


def _histograms(driver: Chrome) -> list[WebElement]:
    """A run page's histograms, once ``viewer.js`` has fetched them into their
    placeholder (the page itself holds only a link to them)."""
    wait = WebDriverWait(driver, PAGE_TIMEOUT)
    wait.until(lambda shown: shown.find_elements(By.CSS_SELECTOR, "#charts.drawn"))
    placeholder = driver.find_element(By.ID, "charts")
    assert placeholder.get_attribute("aria-busy") is None
    assert "failed" not in (placeholder.get_attribute("class") or "")
    return placeholder.find_elements(By.CSS_SELECTOR, "figure.chart")


def _rendered(driver: Chrome, element: WebElement) -> tuple[float, float, float, float]:
    """Where an element is drawn: its box's left, top, width and height."""
    box = driver.execute_script(
        "var box = arguments[0].getBoundingClientRect();"
        "return [box.left, box.top, box.width, box.height];",
        element,
    )
    return box[0], box[1], box[2], box[3]


def _trend(driver: Chrome, address: str, expected: Expected) -> None:
    """From the list to the support FAQ's trend: a line chart per score, the error rate,
    the latency (p50 and p95) and the cost per result, the older run at the left; a
    point leads to its run, whose histograms the page fetches; the run's page leads to
    its target's trend. The hostile run's dataset: its trend shows every text as text."""
    _runs_list(driver, address)
    baseline_row = _rows(driver, "#runs")[1]
    _follow(driver, baseline_row.find_element(By.CSS_SELECTOR, "a.trend"))
    assert urlsplit(driver.current_url).path == "/trend"
    assert _query(driver) == {"dataset_id": [DATASET]}
    _inert(driver, f"Trend of {DATASET} · runstore")
    assert [
        row.find_element(By.CSS_SELECTOR, "td.run .id").text for row in _rows(driver, "#points")
    ] == [BASELINE, CANDIDATE]  # oldest first

    charts = driver.find_elements(By.CSS_SELECTOR, "#trend-charts figure.chart")
    captions = [chart.find_element(By.TAG_NAME, "figcaption").text for chart in charts]
    assert captions == [
        "accuracy (mean)",
        "relevance (mean)",
        "error rate",
        "latency (ms) p50 p95",
        "cost per result",
    ]
    names = [RUNS[BASELINE][0], RUNS[CANDIDATE][0]]
    for chart, caption in zip(charts, captions, strict=True):
        drawing = chart.find_element(By.TAG_NAME, "svg")
        assert drawing.size["width"] > 0
        assert drawing.size["height"] > 0
        lines = drawing.find_elements(By.CSS_SELECTOR, "polyline.trend")
        assert len(lines) == (2 if caption.startswith("latency") else 1)
        for line in lines:  # drawn: a stroke of some length
            assert driver.execute_script("return arguments[0].getTotalLength()", line) > 10
        points = drawing.find_elements(By.CSS_SELECTOR, "a.point")
        assert len(points) == 2 * len(lines)
        for older, newer in zip(points[::2], points[1::2], strict=True):
            assert _rendered(driver, older)[0] < _rendered(driver, newer)[0]  # oldest left
            assert older.get_dom_attribute("href") == f"/runs/{BASELINE}"
            assert newer.get_dom_attribute("href") == f"/runs/{CANDIDATE}"
        tooltips = [
            driver.execute_script("return arguments[0].textContent", title)
            for title in drawing.find_elements(By.TAG_NAME, "title")
        ]
        assert [tip.split(": ", 1)[0] for tip in tooltips] == names * len(lines)
    cost_tips = [
        driver.execute_script("return arguments[0].textContent", title)
        for title in charts[-1].find_elements(By.TAG_NAME, "title")
    ]
    for run_id, tip in zip((BASELINE, CANDIDATE), cost_tips, strict=True):
        shown = tip.split(": ", 1)[1].split(" · ")[0]
        assert float(shown) == pytest.approx(expected.cost_per_result[run_id], rel=1e-3)
    error_tips = [
        driver.execute_script("return arguments[0].textContent", title)
        for title in charts[2].find_elements(By.TAG_NAME, "title")
    ]
    for run_id, tip in zip((BASELINE, CANDIDATE), error_tips, strict=True):
        rate = expected.failed[run_id] / expected.results[run_id]
        assert tip.split(": ", 1)[1].startswith(f"{rate:.1%} · ")

    # a point leads to its run; the run's page fetches its histograms
    _follow(driver, charts[0].find_elements(By.CSS_SELECTOR, "a.point")[0])
    assert urlsplit(driver.current_url).path == f"/runs/{BASELINE}"
    _inert(driver, f"Run {BASELINE} · runstore")
    drawn = _histograms(driver)
    assert [chart.find_element(By.TAG_NAME, "figcaption").text for chart in drawn] == [
        f"latency (ms) ({expected.results[BASELINE]} values)",
        f"cost per result ({expected.results[BASELINE] - expected.failed[BASELINE]} values)",
        *(
            f"{name} ({expected.results[BASELINE] - expected.failed[BASELINE]} values)"
            for name in ("accuracy", "relevance")
        ),
    ]
    for chart in drawn:
        assert chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    _inert(driver, f"Run {BASELINE} · runstore")  # what was fetched ran nothing either

    # the run's page leads to the trend of its dataset and target: this run alone
    _follow(driver, driver.find_element(By.ID, "trend"))
    assert _query(driver) == {"dataset_id": [DATASET], "target_id": ["support-bot-v12"]}
    _inert(driver, f"Trend of {DATASET} · runstore")
    lone = driver.find_elements(By.CSS_SELECTOR, "#trend-charts svg")
    assert lone
    for drawing in lone:
        assert drawing.find_elements(By.CSS_SELECTOR, "polyline") == []
        assert len(drawing.find_elements(By.CSS_SELECTOR, "circle.point")) in (1, 2)

    # the hostile run's dataset: no finished run, then the pending one -- all text
    _runs_list(driver, address)
    _follow(driver, _rows(driver, "#runs")[2].find_element(By.CSS_SELECTOR, "a.trend"))
    _inert(driver, f"Trend of {HOSTILE_SCRIPT} · runstore")
    assert _text(driver, "#no-runs").startswith(f"No finished runs of dataset {HOSTILE_SCRIPT}")
    Select(driver.find_element(By.CSS_SELECTOR, 'select[name="status"]')).select_by_visible_text(
        "pending"
    )
    _follow(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Show']"))
    _inert(driver, f"Trend of {HOSTILE_SCRIPT} · runstore")
    titles = [
        driver.execute_script("return arguments[0].textContent", title)
        for title in driver.find_elements(By.CSS_SELECTOR, "#trend-charts title")
    ]
    assert titles
    assert all(title.startswith(f"name {HOSTILE_IMG}: ") for title in titles)


def _tags_and_metadata(driver: Chrome, address: str) -> None:
    """Narrow the list by clicking tag chips, drop one, add one in the form; then list
    the runs of a model from a run's metadata."""
    _runs_list(driver, address)
    candidate_row = _rows(driver, "#runs")[0]
    _follow(driver, candidate_row.find_element(By.LINK_TEXT, "v13"))
    _inert(driver, "Runs · runstore")
    assert _query(driver) == {"tag": ["v13"]}
    assert _listed(driver) == [CANDIDATE]
    assert _text(driver, "#active-filters") == f"Only runs with v13 {DROP}"

    _follow(driver, _rows(driver, "#runs")[0].find_element(By.LINK_TEXT, "nightly"))
    assert _query(driver) == {"tag": ["v13", "nightly"]}
    assert _listed(driver) == [CANDIDATE]
    active = driver.find_elements(By.CSS_SELECTOR, "#runs a.tag.active")
    assert [chip.text for chip in active] == ["nightly", "v13"]

    _follow(
        driver,
        driver.find_element(By.CSS_SELECTOR, '#active-filters a[aria-label="drop the tag v13"]'),
    )
    assert _query(driver) == {"tag": ["nightly"]}
    assert _listed(driver) == [CANDIDATE, BASELINE]

    driver.find_element(By.CSS_SELECTOR, 'form.filters input[name="tag"]:not([type])').send_keys(
        "v12"
    )
    _follow(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Filter']"))
    assert _query(driver)["tag"] == ["nightly", "v12"]
    assert _listed(driver) == [BASELINE]

    _follow(driver, driver.find_element(By.ID, "all-runs"))
    assert _listed(driver) == [CANDIDATE, BASELINE, HOSTILE_RUN]
    driver.find_element(By.CSS_SELECTOR, 'form.filters input[name="meta"]').send_keys(
        f"model={MODEL}"
    )
    _follow(driver, driver.find_element(By.XPATH, "//button[normalize-space()='Filter']"))
    assert _listed(driver) == [CANDIDATE, BASELINE]

    _follow(driver, driver.find_element(By.CSS_SELECTOR, f'a.name[href="/runs/{BASELINE}"]'))
    _follow(
        driver,
        driver.find_element(By.CSS_SELECTOR, "#metadata").find_element(By.LINK_TEXT, "faq-v3"),
    )
    _inert(driver, "Runs · runstore")
    assert _query(driver) == {"meta": ["prompt=faq-v3"]}
    assert _listed(driver) == [BASELINE]


def _hostile_run(driver: Chrome, address: str) -> None:
    """The run whose every text is script: its page and a result, from the list."""
    _runs_list(driver, address)
    hostile_row = _rows(driver, "#runs")[2]
    _follow(driver, hostile_row.find_element(By.CSS_SELECTOR, "a.tag"))  # its first tag
    _inert(driver, "Runs · runstore")
    assert _listed(driver) == [HOSTILE_RUN]
    assert _text(driver, "#active-filters") == f"Only runs with {HOSTILE_IMG} {DROP}"
    _follow(driver, driver.find_element(By.LINK_TEXT, f"name {HOSTILE_IMG}"))
    _inert(driver, f"Run {HOSTILE_RUN} · runstore")
    assert _text(driver, "h1") == f"name {HOSTILE_IMG} {HOSTILE_RUN} pending"
    assert _text(driver, "#description") == f"description {HOSTILE_SCRIPT}"
    assert [chip.text for chip in driver.find_elements(By.CSS_SELECTOR, "#tags a.tag")] == (
        HOSTILE_TAGS
    )
    assert _pairs(driver, "#metadata") == {"model": HOSTILE_SCRIPT, HOSTILE_IMG: HOSTILE_SCRIPT}
    assert f"dataset {HOSTILE_SCRIPT}" in _text(driver, "main")
    assert f"agent:{HOSTILE_IMG}" in _text(driver, "main")
    links = [row.find_element(By.TAG_NAME, "a").text for row in _rows(driver, "#results")]
    assert links == [HOSTILE_IMG, HOSTILE_SCRIPT]

    results = driver.find_element(By.ID, "results")  # not the tag chip of the same text
    _follow(driver, results.find_element(By.LINK_TEXT, HOSTILE_IMG))
    _inert(driver, f"Result {driver.current_url.rsplit('/', 1)[1]} · runstore")
    assert _text(driver, "h1") == f"Item {HOSTILE_IMG}"
    facts = _pairs(driver, "main")
    assert facts["run"] == HOSTILE_RUN
    assert facts["error"] == HOSTILE_IMG
    assert _text(driver, "#scores tbody") == f"accuracy 0.5 {HOSTILE_SCRIPT} {HOSTILE_IMG}"


def test_a_person_compares_runs_and_reads_them(
    browser: Chrome, viewer: tuple[str, Expected], empty_url: str
) -> None:
    # the browser first: without it, the test skips before it fills a database
    address, expected = viewer
    screenshots = empty_url.startswith("sqlite") and bool(os.environ.get(SCREENSHOTS_ENVVAR))
    _compare(browser, address, expected, screenshots)
    _run_page(browser, expected, screenshots)
    _trend(browser, address, expected)
    _tags_and_metadata(browser, address)
    _hostile_run(browser, address)
    assert browser.title != "pwned"

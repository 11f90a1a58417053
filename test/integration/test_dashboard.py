# The embedded dashboard in a real browser (headless Chromium driven by
# selenium) against a three-node cluster: the static files' headers (CSP,
# ETag and 304, no token), sign-in by keyboard, the cluster view (three
# members, one leader), a queue created and published to from the page and
# its depth moving, receive and ack, a live tail that shows a message another
# client published on another node, errors shown to the person, a pasted
# token, every resource loaded from the node itself, no console errors, and
# a narrow window. One cluster and one browser for the module; the tests run
# in file order and build on each other. Screenshots go to build/dashboard/.
# SPDX-License-Identifier: MIT

import os
import re
import time

import pytest
import requests

from conftest import REPO, mint
from test_cluster import Cluster

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = os.path.join(REPO, "build", "dashboard")
USER, PASSWORD = "dash-user", "dashboard-password-1"
WAIT_S = 20
ASSETS = ("/", "/ui/app.js", "/ui/app.css", "/favicon.svg")

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="chromium and chromium-driver are not installed (make deps installs them)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dashboard"))
    try:
        c.start()
        c.leader()
        r = requests.post(c.nodes[0].url("/v1/auth/users"),
                          json={"username": USER, "password": PASSWORD}, timeout=10)
        assert r.status_code == 201, r.text
        yield c
    finally:
        c.stop_all()
    problems = [p for p in (m.sanitizer_report() for m in c.nodes) if p]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-extensions", "--disable-background-networking",
                 "--disable-component-update", "--disable-default-apps", "--disable-sync",
                 "--no-first-run", "--metrics-recording-only", "--mute-audio",
                 "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(WAIT_S)
    os.makedirs(SHOTS, exist_ok=True)
    try:
        yield d
    finally:
        d.quit()


def console_errors(d, allowed=()):
    """SEVERE console entries since the last call, minus those matching an
    allowed regex (a request the test made fail on purpose)."""
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE"
            and not any(re.search(a, e["message"]) for a in allowed)]


def wait(d, cond, what, timeout=WAIT_S):
    try:
        # the page replaces table rows on every poll: an element found a moment
        # ago may be gone; the condition is then simply tried again
        return WebDriverWait(d, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda drv: cond(drv))
    except Exception:
        shot(d, "failed-" + re.sub(r"\W+", "-", what))
        errors = d.find_element(By.ID, "errors").text
        raise AssertionError("timed out waiting for %s (errors shown: %r)" % (what, errors))


def page_node(cluster, d):
    host = re.match(r"https?://([^/]+)/", d.current_url).group(1)
    return next(m for m in cluster.nodes if m.http == host)


def stream_count(node):
    m = re.search(r"^mom_streams (\S+)$", requests.get(node.url("/metrics"), timeout=10).text,
                  re.M)
    return float(m.group(1))


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, name + ".png"))


def text(d, id_):
    return d.find_element(By.ID, id_).text


def members(d):
    """The member rows as [{node, role, health}], read in one script (the
    rows are replaced on every poll)."""
    return d.execute_script("""
        return [...document.querySelectorAll('#members tbody tr')].map(r => ({
          node: r.dataset.node, role: r.dataset.role, health: r.cells[6].textContent}));""")


def queue_cell(d, name, col):
    return d.execute_script("""
        const r = document.querySelector(`#queue-table tbody tr[data-queue="${arguments[0]}"]`);
        return r ? r.cells[arguments[1]].textContent : null;""", name, col)


def chart_highest(d, queue, col):
    """The highest value a queue row's chart announces to screen readers."""
    label = d.execute_script("""
        const r = document.querySelector(`#queue-table tbody tr[data-queue="${arguments[0]}"]`);
        const svg = r && r.cells[arguments[1]].querySelector('svg');
        return svg ? svg.getAttribute('aria-label') : '';""", queue, col)
    m = re.search(r"highest (-?[\d.]+)", label or "")
    return float(m.group(1)) if m else -1.0


def node_url(c, i, path="/"):
    return c.nodes[i].url(path)


# ---- the static files ------------------------------------------------------

def test_static_files_headers_and_revalidation(cluster):
    for i in range(3):
        for path in ASSETS:
            r = requests.get(node_url(cluster, i, path), timeout=10)  # no token
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
            assert r.headers["X-Mom-Node"] == str(i + 1)
            ctype = r.headers["Content-Type"]
            want = {"/": "text/html", "/ui/app.js": "text/javascript",
                    "/ui/app.css": "text/css", "/favicon.svg": "image/svg+xml"}[path]
            assert ctype.startswith(want), (path, ctype)
            assert r.headers["Cache-Control"] == "no-cache"
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            csp = r.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
            assert "style-src 'self'" in csp and "connect-src 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
            etag = r.headers["ETag"]
            assert re.fullmatch(r'"[0-9a-f]{16}"', etag), etag
            again = requests.get(node_url(cluster, i, path), headers={"If-None-Match": etag},
                                 timeout=10)
            assert again.status_code == 304 and again.content == b""
            assert again.headers["ETag"] == etag
            listed = requests.get(node_url(cluster, i, path),
                                  headers={"If-None-Match": 'W/"0000000000000000", ' + etag},
                                  timeout=10)
            assert listed.status_code == 304
            stale = requests.get(node_url(cluster, i, path),
                                 headers={"If-None-Match": '"0000000000000000"'}, timeout=10)
            assert stale.status_code == 200 and stale.content == r.content
            head = requests.head(node_url(cluster, i, path), timeout=10)
            assert head.status_code == 200 and head.content == b""
            assert int(head.headers["Content-Length"]) == len(r.content)
    # the same build serves the same bytes on every node
    etags = {requests.get(node_url(cluster, i, "/ui/app.js"), timeout=10).headers["ETag"]
             for i in range(3)}
    assert len(etags) == 1
    page = requests.get(node_url(cluster, 0, "/index.html"), timeout=10)
    assert page.status_code == 200 and b"<title>mom dashboard</title>" in page.content
    # nothing inline: no <script> body, no style attribute or element
    html = page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and "style=" not in html
    # unknown files are the API's JSON 404, other methods are not served
    r = requests.get(node_url(cluster, 0, "/ui/missing.js"), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = requests.post(node_url(cluster, 0, "/"), timeout=10)
    assert r.status_code == 404


# ---- the page in a browser -----------------------------------------------

def test_sign_in_by_keyboard_shows_three_members_and_one_leader(cluster, browser):
    d = browser
    follower = next(i for i in range(3) if i != cluster.leader())
    d.get(node_url(cluster, follower))
    assert d.title == "mom dashboard"
    assert d.find_element(By.ID, "login").is_displayed()
    assert not d.find_element(By.ID, "app").is_displayed()
    # every form control has a label a screen reader announces
    unlabelled = d.execute_script("""
        return [...document.querySelectorAll('input, textarea, select')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
          .map(e => e.id || e.name);""")
    assert unlabelled == []
    user = d.find_element(By.ID, "login-user")
    user.click()
    user.send_keys(USER)
    user.send_keys(Keys.TAB)  # focus moves to the password field
    active = d.switch_to.active_element
    assert active.get_attribute("id") == "login-pass"
    active.send_keys(PASSWORD + Keys.ENTER)
    wait(d, lambda drv: len(members(drv)) == 3, "three members")
    wait(d, lambda drv: [m["role"] for m in members(drv)].count("leader") == 1,
         "exactly one leader")
    leader_id = cluster.leader() + 1
    assert [m["node"] for m in members(d) if m["role"] == "leader"] == [str(leader_id)]
    wait(d, lambda drv: all(m["health"] == "healthy" for m in members(drv)),
         "all members healthy")
    line = text(d, "node-line")
    assert "Signed in as %s" % USER in line
    assert "answered by node %d" % (follower + 1) in line
    summary = text(d, "cluster-summary")
    assert "Term" in summary and "Commit index" in summary and "Applied index" in summary
    assert d.execute_script("return sessionStorage.getItem('mom.token')")
    assert d.find_element(By.ID, "login-pass").get_attribute("value") == ""
    shot(d, "cluster")
    assert console_errors(d) == []


def test_create_queue_publish_receive_ack_from_the_page(cluster, browser):
    d = browser
    other = cluster.client((cluster.leader() + 1) % 3)
    d.find_element(By.ID, "queue-new").send_keys("orders" + Keys.ENTER)
    wait(d, lambda drv: queue_cell(drv, "orders", 1) == "0", "queue orders listed with depth 0")
    assert other.get_queue("orders")["owner"] == USER
    # publish from the page
    d.find_element(By.CSS_SELECTOR, "input[name=kind][value=queues]").click()
    d.find_element(By.ID, "publish-name").send_keys("orders")
    body = d.find_element(By.ID, "publish-body")
    body.clear()
    body.send_keys("first from the page")
    d.find_element(By.CSS_SELECTOR, "#publish-form button[type=submit]").click()
    wait(d, lambda drv: "Published to queue orders" in text(drv, "publish-result"),
         "publish confirmation")
    wait(d, lambda drv: queue_cell(drv, "orders", 1) == "1", "depth 1")
    assert other.get_queue("orders")["depth"] == 1
    # another client publishes: the polled view follows
    for i in range(2):
        other.publish("orders", "from another client %d" % i)
    wait(d, lambda drv: queue_cell(drv, "orders", 1) == "3", "depth 3")
    # receive one from the page: in flight 1; ack it: depth 2
    max_field = d.find_element(By.ID, "receive-max")
    max_field.clear()
    max_field.send_keys("1")
    d.find_element(By.ID, "receive-name").send_keys("orders")
    d.find_element(By.CSS_SELECTOR, "#receive-form button[type=submit]").click()
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#received li")) == 1,
         "one received message")
    assert "first from the page" in text(d, "received")
    wait(d, lambda drv: queue_cell(drv, "orders", 2) == "1", "in flight 1")
    d.find_element(By.CSS_SELECTOR, "#received li button").click()
    wait(d, lambda drv: "acked" in text(drv, "received"), "ack confirmation")
    wait(d, lambda drv: queue_cell(drv, "orders", 1) == "2" and queue_cell(drv, "orders", 2) == "0",
         "depth 2 after the ack")
    q = other.get_queue("orders")
    assert (q["depth"], q["in_flight"]) == (2, 0)
    # the depth chart has points
    points = d.execute_script("""return document.querySelector(
        '#queue-table tr[data-queue="orders"] svg polyline').getAttribute('points')""")
    assert len(points.split()) >= 2
    # rates from the node's /metrics counters saw the publishes and the ack
    wait(d, lambda drv: "/metrics counters" in text(drv, "rates-note"), "rates from /metrics")
    assert text(d, "rate1-h") == "Published / s" and text(d, "rate2-h") == "Acked / s"
    wait(d, lambda drv: chart_highest(drv, "orders", 5) > 0, "a publish rate above 0")
    wait(d, lambda drv: chart_highest(drv, "orders", 6) > 0, "an ack rate above 0")
    d.execute_script("document.getElementById('queues').scrollIntoView()")
    shot(d, "queues")
    assert console_errors(d) == []


def test_topics_subscriptions_and_peek(cluster, browser):
    d = browser
    api = cluster.client(0, sub=USER)
    d.find_element(By.ID, "topic-new").send_keys("events" + Keys.ENTER)
    wait(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, '#topic-table tr[data-topic="events"]'),
         "topic events listed")
    r = api.put("/v1/topics/events/subscriptions/audit")
    assert r.status_code == 201, r.text
    for i in range(3):
        api.publish_topic("events", "event %d" % i)
    wait(d, lambda drv: "audit (lag 3)" in text(drv, "topic-table"), "subscription lag 3")
    assert d.execute_script("""return document.querySelector(
        '#topic-table tr[data-topic="events"]').cells[1].textContent""") == "3"
    # the publish rate comes from the offsets of successive polls
    wait(d, lambda drv: drv.execute_script("""const p = document.querySelector(
        '#topic-table tr[data-topic="events"] svg polyline');
        return p && p.getAttribute('points').split(' ').length >= 2"""), "a topic rate chart")
    d.find_element(By.ID, "peek-name").send_keys("events" + Keys.ENTER)
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#peeked li")) == 3, "3 peeked")
    assert "event 0" in text(d, "peeked") and "next offset is 3" in text(d, "peek-result")
    assert console_errors(d) == []


def test_live_tail_shows_a_message_published_elsewhere(cluster, browser):
    d = browser
    d.find_element(By.ID, "tail-name").send_keys("events")
    d.find_element(By.ID, "tail-start").click()
    wait(d, lambda drv: "waiting for new messages" in text(drv, "tail-status"), "tail started")
    assert d.find_element(By.ID, "tail-stop").is_enabled()
    # the page's EventSource is open on the node that served the page;
    # publish through each node
    node = page_node(cluster, d)
    wait(d, lambda drv: stream_count(node) == 1, "the stream open on the page's node")
    for i in range(3):
        cluster.client(i).publish_topic("events", "tailed via node %d" % (i + 1))
    wait(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#tail-list li")) == 3,
         "three tailed messages")
    tailed = text(d, "tail-list")
    for i in range(3):
        assert "tailed via node %d" % (i + 1) in tailed
    assert "event 0" not in tailed  # the tail starts at the end of the topic
    d.execute_script("document.getElementById('tail').scrollIntoView()")
    shot(d, "tail")
    d.find_element(By.ID, "tail-stop").click()
    wait(d, lambda drv: text(drv, "tail-status") == "Not tailing.", "tail stopped")
    wait(d, lambda drv: stream_count(node) == 0, "the stream closed on the node")
    assert console_errors(d) == []


def test_live_tail_of_an_unknown_topic_says_why(cluster, browser):
    d = browser
    name = d.find_element(By.ID, "tail-name")
    name.clear()
    name.send_keys("no-such-topic")
    d.find_element(By.ID, "tail-start").click()
    wait(d, lambda drv: "does not exist" in text(drv, "errors"), "the error shown")
    wait(d, lambda drv: "stopped" in text(drv, "tail-status"), "tail stopped")
    assert d.find_element(By.ID, "tail-start").is_enabled()
    assert console_errors(d, allowed=[r"no-such-topic"]) == []


def test_overview_screenshot(cluster, browser):
    """The picture in the README: cluster, queues and topics at once."""
    d = browser
    d.set_window_size(1024, 1180)
    try:
        d.execute_script("window.scrollTo(0, 0)")
        wait(d, lambda drv: queue_cell(drv, "orders", 1) == "2", "queues shown")
        time.sleep(2.5)  # one more poll: the charts have a few points
        shot(d, "overview")
    finally:
        d.set_window_size(1280, 1000)


def test_api_errors_are_shown(cluster, browser):
    d = browser
    d.find_element(By.CSS_SELECTOR, "input[name=kind][value=queues]").click()
    name = d.find_element(By.ID, "publish-name")
    name.clear()
    name.send_keys("no-such-queue")
    d.find_element(By.CSS_SELECTOR, "#publish-form button[type=submit]").click()
    wait(d, lambda drv: "queue_not_found" in text(drv, "errors"), "the 404 shown")
    assert "Not published." in text(d, "publish-result")
    assert d.find_element(By.ID, "errors").get_attribute("role") == "alert"
    d.find_element(By.CSS_SELECTOR, "#errors .error button").click()  # dismiss
    wait(d, lambda drv: "queue_not_found" not in text(drv, "errors"), "error dismissed")
    logged = d.get_log("browser")
    # the console capture works: the failed request is there, nothing else
    assert any("no-such-queue/messages" in e["message"] for e in logged), logged
    assert [e for e in logged if e["level"] == "SEVERE" and "no-such-queue/messages" not in
            e["message"]] == []


def test_every_resource_comes_from_the_node(cluster, browser):
    d = browser
    origin = d.execute_script("return location.origin")
    assert origin == "http://" + d.current_url.split("/")[2]
    entries = d.execute_script("""
        return performance.getEntriesByType('navigation').concat(
          performance.getEntriesByType('resource')).map(e => [e.name, e.initiatorType]);""")
    names = [n for n, _ in entries]
    assert any(n.endswith("/ui/app.js") for n in names)
    assert any(n.endswith("/ui/app.css") for n in names)
    assert any("/v1/cluster" in n for n in names)
    foreign = [n for n in names if not n.startswith(origin + "/")]
    assert foreign == []
    # the document itself references nothing elsewhere
    refs = d.execute_script("""
        return [...document.querySelectorAll('[src], [href]')]
          .map(e => e.src || e.href).filter(u => u && !u.startsWith('#'));""")
    assert [u for u in refs if not u.startswith(origin + "/")] == []


def test_pasted_token_and_expired_token(cluster, browser):
    d = browser
    d.find_element(By.ID, "logout").click()
    wait(d, lambda drv: drv.find_element(By.ID, "login").is_displayed(), "login form again")
    assert d.execute_script("return sessionStorage.getItem('mom.token')") is None
    # a token that expired an hour ago: the 401 is shown and the page asks to sign in
    d.find_element(By.ID, "token-text").send_keys(mint("paster", exp_in=-3600))
    d.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    wait(d, lambda drv: "invalid_token" in text(drv, "errors"), "the 401 shown")
    wait(d, lambda drv: drv.find_element(By.ID, "login").is_displayed(), "back to login")
    # a valid pasted token works on another node too
    d.get(node_url(cluster, cluster.leader()))
    d.find_element(By.ID, "token-text").send_keys(mint("paster"))
    d.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    wait(d, lambda drv: len(members(drv)) == 3, "three members with a pasted token")
    assert "Signed in as paster" in text(d, "node-line")
    # the expired token's 401s: on whichever /v1 routes the page had asked
    # for before it went back to the login form (the tailed topic's
    # subscriptions too, depending on timing)
    assert console_errors(d, allowed=(r"/v1/[\w/.-]+ - Failed to load resource: "
                                      r"the server responded with a status of 401",)) == []


def test_narrow_window(cluster, browser):
    d = browser
    d.set_window_size(375, 812)
    try:
        d.refresh()  # the token stays in this tab's sessionStorage
        wait(d, lambda drv: len(members(drv)) == 3, "members on a narrow window")
        wait(d, lambda drv: queue_cell(drv, "orders", 1) is not None, "queues on a narrow window")
        width = d.execute_script("return window.innerWidth")
        page = d.execute_script("return document.documentElement.scrollWidth")
        assert page <= width, "the page scrolls sideways: %d > %d" % (page, width)
        for b in d.find_elements(By.CSS_SELECTOR, "button:not([hidden])"):
            if b.is_displayed():
                assert b.rect["x"] >= 0 and b.rect["x"] + b.rect["width"] <= width + 1
        shot(d, "narrow")
        assert console_errors(d) == []
    finally:
        d.set_window_size(1280, 1000)


def test_a_stopped_member_shows_unreachable_then_healthy(cluster, browser):
    d = browser
    leader = cluster.leader()
    if d.current_url.rstrip("/") != node_url(cluster, leader).rstrip("/"):
        d.get(node_url(cluster, leader))
    wait(d, lambda drv: len(members(drv)) == 3, "members on the leader")
    victim = next(i for i in range(3) if i != leader)
    cluster.nodes[victim].stop()
    try:
        wait(d, lambda drv: [m["health"] for m in members(drv)
                             if m["node"] == str(victim + 1)] == ["unreachable"],
             "node %d shown unreachable" % (victim + 1))
        shot(d, "member-down")
    finally:
        cluster.nodes[victim].start()
    wait(d, lambda drv: all(m["health"] == "healthy" for m in members(drv)),
         "every member healthy again")
    assert console_errors(d) == []


def test_screenshots_written():
    for name in ("cluster", "queues", "tail", "overview", "narrow"):
        path = os.path.join(SHOTS, name + ".png")
        assert os.path.getsize(path) > 1000
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


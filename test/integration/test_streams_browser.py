# A browser's EventSource (headless Chromium through selenium) on a topic
# stream: the token in ?access_token= (EventSource sends no headers), the
# events and their JSON as the message lists show them, and the browser's
# own reconnect after the node was killed and restarted: it sends
# Last-Event-ID, so the stream resumes with no gap and no duplicate although
# its URL says from=earliest.
# SPDX-License-Identifier: MIT

import os

import pytest

from conftest import Client, free_port, mint

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="chromium and chromium-driver are not installed (make deps installs them)")


@pytest.fixture
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-extensions", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_page_load_timeout(WAIT_S)
    try:
        yield d
    finally:
        d.quit()



def received(d):
    return d.execute_script("return window.got")


def test_event_source_reads_and_resumes_after_a_restart(momd_factory, browser):
    port = free_port()
    m = momd_factory(args=["--http-addr", "127.0.0.1:%d" % port])
    c = Client(m, mint("alice"))
    c.create_topic("t")
    for i in range(3):
        c.publish_topic("t", "before %d" % i)
    d = browser
    d.get(m.url("/"))  # same origin as the stream: no CORS needed
    d.execute_script("""
        window.got = []; window.opens = 0;
        const es = new EventSource('/v1/topics/t/stream?from=earliest&access_token=' +
                                   encodeURIComponent(arguments[0]));
        es.onopen = () => { window.opens++; };
        es.addEventListener('message', (e) => {
          window.got.push({id: e.lastEventId, type: e.type, data: JSON.parse(e.data)});
        });
        window.es = es;""", mint("alice"))
    wait = WebDriverWait(d, WAIT_S, poll_frequency=0.1)
    wait.until(lambda drv: len(received(drv)) == 3)
    listed = c.read_topic("t", **{"from": "earliest"})["messages"]
    got = received(d)
    assert [g["id"] for g in got] == ["0", "1", "2"]
    assert all(g["type"] == "message" for g in got)
    assert [g["data"] for g in got] == listed
    c.publish_topic("t", "live")
    wait.until(lambda drv: len(received(drv)) == 4)
    assert received(d)[3]["data"]["body"] == "live"
    # the node dies under the open stream and comes back on the same port:
    # the browser reconnects by itself (retry: 2000) with Last-Event-ID 3
    m.kill9()
    m.start()
    c2 = Client(m, mint("alice"))
    wait.until(lambda drv: drv.execute_script("return window.opens") >= 2)
    c2.publish_topic("t", "after the restart")
    wait.until(lambda drv: len(received(drv)) >= 5)
    got = received(d)
    assert [g["id"] for g in got] == ["0", "1", "2", "3", "4"]
    assert got[4]["data"]["body"] == "after the restart"
    d.execute_script("window.es.close()")
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"
              and "/v1/topics/t/stream" not in e["message"]]
    assert severe == []

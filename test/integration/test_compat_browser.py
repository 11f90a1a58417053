# A page served from a second origin behaves like the prototype's React
# client (fetch with Authorization and Content-Type: application/json to
# "//api/..." paths): register, log in, list the demo magazines, subscribe,
# read articles. Headless Chromium drives it; the test asserts what the page
# shows, and that a page from an origin not in MOM_CORS_ORIGINS is refused.
# SPDX-License-Identifier: MIT

import os
import re
import subprocess
import sys

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Client, wait_until

PAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_client")
DEMO_PASSWORD = "demo-clave-1"
MAGAZINES = ["BBC", "CNN", "El_tiempo", "Minuto_30", "t1", "t3"]


@pytest.fixture
def page_server():
    """python http.server on a free port serving seed_client/; yields its origin."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind",
                             "127.0.0.1", "--directory", PAGE_DIR],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"port (\d+)", line)
        assert m, "http.server did not start: %r" % line
        yield "http://127.0.0.1:%s" % m.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        yield d
    finally:
        d.quit()


# Read in one script: the page re-renders its lists, and an element found
# in one WebDriver call can be replaced before the next one reads it.
def text_of(d, element_id):
    return d.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : null;",
        element_id)


# A list's buttons too: subscribe() shows its answer and only then
# refreshes the lists, so a button found after the answer shows can be
# replaced before a second WebDriver call clicks it (stale element).
def click(d, element_id):
    assert d.execute_script(
        "const e = document.getElementById(arguments[0]); if (e) e.click(); return !!e;",
        element_id), "#%s is not on the page" % element_id


def wait_text(d, element_id, want, timeout=10):
    WebDriverWait(d, timeout).until(lambda _: text_of(d, element_id) == want,
                                    "#%s never showed %r (shows %r)"
                                    % (element_id, want, text_of(d, element_id)))


def list_texts(d, element_id):
    return d.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' > li'),"
        " li => li.querySelector('span').innerText);", element_id)


def demo_node(momd_factory, origins):
    m = momd_factory(env={"MOM_DEMO": "1", "MOM_DEMO_PASSWORD": DEMO_PASSWORD,
                          "MOM_CORS_ORIGINS": origins})
    wait_until(lambda: Client(m).post("/api/auth/login", json={
        "username": "admin", "password": DEMO_PASSWORD}).status_code == 200,
        timeout=10, what="demo data")
    return m


def test_seed_client_in_a_browser(momd_factory, page_server, browser):
    m = demo_node(momd_factory, page_server)
    d = browser
    d.get("%s/index.html?mom=http://%s" % (page_server, m.http))
    d.find_element(By.ID, "username").send_keys("lectora")
    d.find_element(By.ID, "password").send_keys("clave-segura-1")
    d.find_element(By.ID, "register").click()
    wait_text(d, "status", "Usuario registrado exitosamente")
    d.find_element(By.ID, "register").click()
    wait_text(d, "status", "Error 409: El usuario ya existe")
    d.find_element(By.ID, "login").click()
    wait_text(d, "status", "Sesión iniciada")
    assert list_texts(d, "magazines") == MAGAZINES
    assert list_texts(d, "mine") == []
    assert text_of(d, "node") == m.node  # an exposed header the page can read

    click(d, "sub-CNN")
    wait_text(d, "status", "Suscripción exitosa al tópico 'CNN'")
    WebDriverWait(d, 10).until(lambda _: list_texts(d, "mine") == ["CNN"])
    click(d, "sub-CNN")
    wait_text(d, "status", "Error 409: Ya estás suscrito al tópico 'CNN'")

    click(d, "read-CNN")
    admin = Client(m, Client(m).post("/api/auth/login", json={
        "username": "admin", "password": DEMO_PASSWORD}).json()["token"])
    articles = admin.read_topic("CNN")["messages"]
    wait_text(d, "status", "%d artículos" % len(articles))
    assert text_of(d, "reading") == "CNN"
    assert list_texts(d, "articles") == ["admin: " + a["body"] for a in articles]

    # what the page did is the /v1 state
    subs = admin.get("/v1/topics/CNN/subscriptions").json()["subscriptions"]
    assert [(s["name"], s["owner"]) for s in subs] == [("lectora", "lectora")]
    errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    # the two 409s the page provoked are logged by Chromium as failed loads
    assert all("409" in e["message"] for e in errors), errors


def test_other_origins_are_refused(momd_factory, page_server, browser):
    m = demo_node(momd_factory, "http://allowed.example")
    d = browser
    d.get("%s/index.html?mom=http://%s" % (page_server, m.http))
    d.find_element(By.ID, "username").send_keys("lectora")
    d.find_element(By.ID, "password").send_keys("clave-segura-1")
    d.find_element(By.ID, "login").click()
    wait_text(d, "status", "Error 0: Sin conexión")
    logs = " ".join(e["message"] for e in d.get_log("browser"))
    assert "CORS" in logs, logs

"""Long polls that lose a race keep waiting: two receivers with wait_ms see
one message; the one whose lease came back empty must wait for the next
publish instead of answering an empty list at once."""
import threading
import time

from conftest import Client, body_bytes, mint


def test_receiver_that_loses_the_race_keeps_waiting(momd):
    c = Client(momd, mint("alice"))
    c.create_queue("q")
    c.publish("q", b"first")
    results = {}

    def receive(name):
        rc = Client(momd, mint(name))
        t0 = time.monotonic()
        msgs = rc.receive("q", wait_ms=5000, timeout=15)
        results[name] = (msgs, time.monotonic() - t0)
        rc.close()

    threads = [threading.Thread(target=receive, args=(n,)) for n in ("r1", "r2")]
    for t in threads:
        t.start()
    time.sleep(0.8)
    c.publish("q", b"second")
    for t in threads:
        t.join(20)
    bodies = sorted(body_bytes(m) for msgs, _ in results.values() for m in msgs)
    assert bodies == [b"first", b"second"], results
    for name, (msgs, elapsed) in results.items():
        assert len(msgs) == 1, (name, msgs)
        assert elapsed < 4.5, (name, elapsed)

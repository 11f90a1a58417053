# The prototype's routes (/api/..., /colas, /topicos): every route's status
# and shape, its Spanish messages and error shapes, that each compat
# resource is the /v1 resource, slash merging and CORS, on one node and
# through a follower of a three-node cluster.
# SPDX-License-Identifier: MIT

import base64

import pytest
import requests

from conftest import RFC3339_MS, Client, mint
from test_cluster import Cluster

ORIGIN = "http://reader.example:5173"


def api_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    return body["error"]


def node_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str), body
    return body["detail"]


@pytest.fixture
def node(momd_factory):
    return momd_factory(env={"MOM_CORS_ORIGINS": ORIGIN + ", http://other.example"})


def api_user(momd, name, password="secreto-123"):
    """Registers through /api and logs in; returns a Client with that token."""
    anon = Client(momd)
    r = anon.post("//api/auth/register", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    assert r.json() == {"message": "Usuario registrado exitosamente"}
    r = anon.post("//api/auth/login", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["token"]
    return Client(momd, r.json()["token"])


def test_register_and_login(node):
    anon = Client(node)
    c = api_user(node, "ana")
    # the token is an ordinary mom token
    assert c.get("/v1/queues").status_code == 200
    r = anon.post("/api/auth/register", json={"username": "ana", "password": "otra-clave-1"})
    assert api_error(r, 409) == "El usuario ya existe"
    assert api_error(anon.post("/api/auth/register", json={"username": "x"}), 400) == \
        "Se requieren username y password"
    assert api_error(anon.post("/api/auth/register", data=b"{nope"), 400) == "JSON inválido"
    api_error(anon.post("/api/auth/register", json={"username": "a b", "password": "12345678x"}),
              400)
    api_error(anon.post("/api/auth/register", json={"username": "bob", "password": "short"}), 400)
    r = anon.post("/api/auth/login", json={"username": "ana", "password": "mala-clave-1"})
    assert api_error(r, 401) == "Credenciales inválidas"
    r = anon.post("/api/auth/login", json={"username": "nadie", "password": "secreto-123"})
    assert api_error(r, 401) == "Credenciales inválidas"
    assert api_error(anon.post("/api/auth/login", json={}), 400) == \
        "Se requieren username y password"


def test_registration_disabled(momd_factory):
    m = momd_factory(args=["--allow-registration", "false"])
    r = Client(m).post("/api/auth/register", json={"username": "ana", "password": "secreto-123"})
    assert api_error(r, 403) == "El registro de usuarios está deshabilitado"


def test_tokens_on_compat_routes(node):
    anon = Client(node)
    for path in ("/api/topicos", "/api/colas", "/api/mis-topicos", "/api/topicos/x/mensajes"):
        assert api_error(anon.get(path), 401) == "Token inválido"
        r = anon.get(path, headers={"Authorization": "Bearer not.a.jwt"})
        assert api_error(r, 401) == "Token inválido"
    for method, path in (("GET", "/colas"), ("POST", "/colas"), ("GET", "/topicos"),
                         ("DELETE", "/colas/q"), ("POST", "/topicos/t/publicar"),
                         ("GET", "/topicos/t/mensajes"), ("GET", "/colas/q/mensajes")):
        assert node_error(anon.request(method, path), 403) == "Token inválido"
        r = anon.request(method, path, headers={"Authorization": "Bearer " + mint(exp_in=-600)})
        assert node_error(r, 403) == "Token inválido"


def test_api_topics(node):
    ana, beto = api_user(node, "ana"), api_user(node, "beto")
    r = ana.post("//api/topicos", json={"nombre": "CNN"})
    assert r.status_code == 201, r.text
    assert r.json() == {"mensaje": "Tópico 'CNN' creado exitosamente", "topico_id": "CNN"}
    assert api_error(ana.post("/api/topicos", json={"nombre": "CNN"}), 409) == \
        "El tópico 'CNN' ya existe"
    assert "Nombre inválido" in api_error(ana.post("/api/topicos", json={"nombre": "El tiempo"}),
                                          400)
    assert "Nombre inválido" in api_error(ana.post("/api/topicos", json={"nombre": ""}), 400)
    assert api_error(ana.post("/api/topicos", json={"name": "x"}), 400) == \
        "Falta el campo 'nombre' (texto)"
    assert api_error(ana.post("/api/topicos", json={"nombre": 7}), 400) == \
        "Falta el campo 'nombre' (texto)"
    assert api_error(ana.post("/api/topicos", data=b"[1,2"), 400) == "JSON inválido"
    assert beto.get("//api/topicos").json() == {"topicos": ["CNN"]}

    r = beto.post("//api/topicos/CNN/mensajes", json={"mensaje": "Hola, ¿qué tal?"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["mensaje"] == "Mensaje enviado exitosamente al tópico"
    assert isinstance(body["mensaje_id"], str) and body["mensaje_id"]
    assert api_error(beto.post("/api/topicos/CNN/mensajes", json={"texto": "x"}), 400) == \
        "Falta el campo 'mensaje' (texto)"
    assert api_error(beto.post("/api/topicos/NOPE/mensajes", json={"mensaje": "x"}), 404) == \
        "El tópico 'NOPE' no existe"
    r = ana.get("//api/topicos/CNN/mensajes")
    assert r.status_code == 200
    got = r.json()
    assert got["topico"] == "CNN" and len(got["mensajes"]) == 1
    m = got["mensajes"][0]
    assert set(m) == {"id", "emisor", "contenido", "timestamp"}
    assert m["id"] == body["mensaje_id"] and m["emisor"] == "beto"
    assert m["contenido"] == "Hola, ¿qué tal?" and RFC3339_MS.match(m["timestamp"])
    assert api_error(ana.get("/api/topicos/NOPE/mensajes"), 404) == "El tópico 'NOPE' no existe"
    assert "Nombre inválido" in api_error(ana.get("/api/topicos/a%20b/mensajes"), 400)

    assert api_error(beto.delete("/api/topicos/CNN"), 403) == \
        "Solo el creador puede eliminar el tópico 'CNN'"
    r = ana.delete("/api/topicos/CNN")
    assert r.status_code == 200 and r.json() == {"mensaje": "Tópico 'CNN' eliminado exitosamente"}
    assert api_error(ana.delete("/api/topicos/CNN"), 404) == "El tópico 'CNN' no existe"
    assert ana.get("/api/topicos").json() == {"topicos": []}


def test_api_subscriptions_are_v1_subscriptions(node):
    ana, beto = api_user(node, "ana"), api_user(node, "beto")
    ana.post("/api/topicos", json={"nombre": "BBC"})
    ana.post("/api/topicos", json={"nombre": "CNN"})
    assert beto.get("/api/mis-topicos").json() == {"topicos": []}
    r = beto.post("//api/topicos/BBC/suscribir")
    assert r.status_code == 200 and r.json() == {"mensaje": "Suscripción exitosa al tópico 'BBC'"}
    assert api_error(beto.post("/api/topicos/BBC/suscribir"), 409) == \
        "Ya estás suscrito al tópico 'BBC'"
    assert api_error(beto.post("/api/topicos/NOPE/suscribir"), 404) == "El tópico 'NOPE' no existe"
    assert beto.post("/api/topicos/CNN/suscribir").status_code == 200
    assert beto.get("//api/mis-topicos").json() == {"topicos": ["BBC", "CNN"]}
    assert ana.get("/api/mis-topicos").json() == {"topicos": []}
    # the durable subscription named after the user, as /v1 sees it
    subs = beto.get("/v1/subscriptions").json()["subscriptions"]
    assert {(s["topic"], s["name"], s["owner"]) for s in subs} == \
        {("BBC", "beto", "beto"), ("CNN", "beto", "beto")}
    # it starts at the earliest message: a /v1 reader of it sees the back issues
    ana.post("/api/topicos/BBC/mensajes", json={"mensaje": "uno"})
    got = beto.get("/v1/topics/BBC/subscriptions/beto/messages").json()["messages"]
    assert [m["body"] for m in got] == ["uno"]
    r = beto.post("/api/topicos/BBC/desuscribir")
    assert r.status_code == 200 and "BBC" in r.json()["mensaje"]
    assert api_error(beto.post("/api/topicos/BBC/desuscribir"), 409) == \
        "No estás suscrito al tópico 'BBC'"
    assert api_error(beto.post("/api/topicos/NOPE/desuscribir"), 404) == \
        "El tópico 'NOPE' no existe"
    assert beto.get("/api/mis-topicos").json() == {"topicos": ["CNN"]}
    assert beto.get("/v1/topics/BBC/subscriptions/beto").status_code == 404


def test_api_queues(node):
    ana, beto = api_user(node, "ana"), api_user(node, "beto")
    r = ana.post("//api/colas", json={"nombre": "pedidos"})
    assert r.status_code == 201
    assert r.json() == {"mensaje": "Cola 'pedidos' creada exitosamente", "cola_id": "pedidos"}
    assert api_error(ana.post("/api/colas", json={"nombre": "pedidos"}), 409) == \
        "La cola 'pedidos' ya existe"
    assert "Nombre inválido" in api_error(ana.post("/api/colas", json={"nombre": "a/b"}), 400)
    assert api_error(ana.post("/api/colas", json={}), 400) == "Falta el campo 'nombre' (texto)"
    assert beto.get("/api/colas").json() == {"colas": ["pedidos"]}
    for text in ("primero", "segundo"):
        r = ana.post("/api/colas/pedidos/mensajes", json={"mensaje": text})
        assert r.status_code == 201
        assert r.json()["mensaje"] == "Mensaje enviado exitosamente a la cola"
    r = beto.get("//api/colas/pedidos/mensajes")
    assert r.status_code == 200, r.text
    m = r.json()["mensaje"]
    assert set(m) == {"id", "emisor", "contenido", "timestamp", "entregado", "receptor",
                      "fecha_entrega"}
    assert m["contenido"] == "primero" and m["emisor"] == "ana" and m["receptor"] == "beto"
    assert m["entregado"] is True and RFC3339_MS.match(m["fecha_entrega"])
    # taken at most once: it is gone, not leased
    q = ana.get("/v1/queues/pedidos").json()
    assert q["depth"] == 1 and q["in_flight"] == 0
    assert beto.get("/api/colas/pedidos/mensajes").json()["mensaje"]["contenido"] == "segundo"
    r = beto.request("HEAD", "/api/colas/pedidos/mensajes")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    assert beto.request("HEAD", "/colas/pedidos/mensajes").status_code == 405
    r = beto.get("/api/colas/pedidos/mensajes")
    assert r.status_code == 204 and r.content == b""
    assert api_error(beto.get("/api/colas/nope/mensajes"), 404) == "La cola 'nope' no existe"
    assert api_error(beto.post("/api/colas/nope/mensajes", json={"mensaje": "x"}), 404) == \
        "La cola 'nope' no existe"
    assert api_error(beto.delete("/api/colas/pedidos"), 403) == \
        "Solo el creador puede eliminar la cola 'pedidos'"
    r = ana.delete("/api/colas/pedidos")
    assert r.status_code == 200 and r.json() == {"mensaje": "Cola 'pedidos' eliminada exitosamente"}
    assert api_error(ana.delete("/api/colas/pedidos"), 404) == "La cola 'pedidos' no existe"
    assert api_error(ana.put("/api/colas"), 405) == "Método no permitido"
    assert api_error(ana.get("/api/nada"), 404) == "Ruta no encontrada"


def test_node_routes(node):
    ana = Client(node, mint("ana"))
    beto = Client(node, mint("beto"))
    r = ana.post("//colas", json={"nombre": "q1"})
    assert r.status_code == 200 and r.json() == {"mensaje": "Cola 'q1' creada por ana"}
    assert node_error(ana.post("/colas", json={"nombre": "q1"}), 400) == "La cola 'q1' ya existe"
    assert node_error(ana.post("/colas", json={"nombre": "q 1"}), 400).startswith(
        "Nombre inválido")
    assert node_error(ana.post("/colas", data=b"x"), 400) == "JSON inválido"
    assert node_error(ana.post("/colas", json={}), 400) == "Falta el campo 'nombre' (texto)"
    assert beto.get("/colas").json() == {"colas": ["q1"]}
    r = beto.post("/colas/q1/publicar", json={"mensaje": "hola"})
    assert r.status_code == 200 and r.json() == {"mensaje": "Mensaje publicado exitosamente"}
    assert node_error(beto.post("/colas/q1/publicar", json={}), 400) == \
        "Falta el campo 'mensaje' (texto)"
    assert node_error(beto.post("/colas/nope/publicar", json={"mensaje": "x"}), 404) == \
        "La cola 'nope' no existe"
    r = ana.get("/colas/q1/mensajes")
    assert r.status_code == 200 and r.json() == {"cola": "q1", "mensaje": "hola"}
    r = ana.get("/colas/q1/mensajes")
    assert r.status_code == 200 and r.json() == {"mensaje": "No hay mensajes en la cola"}
    assert node_error(ana.get("/colas/nope/mensajes"), 404) == "La cola 'nope' no existe"
    assert node_error(beto.delete("/colas/q1"), 403) == "Solo el creador puede eliminar la cola 'q1'"
    r = ana.delete("/colas/q1")
    assert r.status_code == 200 and r.json() == {"mensaje": "Cola 'q1' eliminada"}
    assert node_error(ana.delete("/colas/q1"), 404) == "La cola 'q1' no existe"

    r = ana.post("/topicos", json={"nombre": "t1"})
    assert r.status_code == 200 and r.json() == {"mensaje": "Tópico 't1' creado por ana"}
    assert node_error(ana.post("/topicos", json={"nombre": "t1"}), 400) == \
        "El tópico 't1' ya existe"
    assert beto.get("/topicos").json() == {"topicos": ["t1"]}
    assert ana.get("/topicos/t1/mensajes").json() == {"topico": "t1", "mensaje": []}
    for text in ("a", "b", "c"):
        r = beto.post("/topicos/t1/publicar", json={"mensaje": text})
        assert r.status_code == 200 and r.json() == {"mensaje": "Mensaje publicado exitosamente"}
    # a topic read takes nothing: every reader sees all that is retained
    for _ in range(2):
        assert ana.get("/topicos/t1/mensajes").json() == {"topico": "t1", "mensaje": ["a", "b", "c"]}
    assert node_error(ana.get("/topicos/nope/mensajes"), 404) == "El tópico 'nope' no existe"
    assert node_error(beto.delete("/topicos/t1"), 403) == \
        "Solo el creador puede eliminar el tópico 't1'"
    r = ana.delete("/topicos/t1")
    assert r.status_code == 200 and r.json() == {"mensaje": "Tópico 't1' eliminado"}


def test_compat_resources_are_v1_resources(node):
    ana = api_user(node, "ana")
    ana.post("/api/topicos", json={"nombre": "El_tiempo"})
    ana.post("/colas", json={"nombre": "q2"})
    assert [t["name"] for t in ana.get("/v1/topics").json()["topics"]] == ["El_tiempo"]
    q = ana.get("/v1/queues/q2").json()
    assert q["owner"] == "ana"
    assert ana.get("/v1/topics/El_tiempo").json()["owner"] == "ana"
    # a message published through compat is a /v1 message, stored as text
    ana.post("/api/topicos/El_tiempo/mensajes", json={"mensaje": "Lluvia en Medellín"})
    m = ana.read_topic("El_tiempo")["messages"][0]
    assert m["body"] == "Lluvia en Medellín" and m["content_type"] == "text/plain; charset=utf-8"
    assert m["publisher"] == "ana"
    # and the other way round, a binary body shows as base64
    ana.publish_topic("El_tiempo", b"\xff\x00\x01")
    got = ana.get("/api/topicos/El_tiempo/mensajes").json()["mensajes"]
    assert [g["contenido"] for g in got] == ["Lluvia en Medellín",
                                             base64.b64encode(b"\xff\x00\x01").decode()]
    ana.publish("q2", "desde v1")
    assert ana.get("/colas/q2/mensajes").json() == {"cola": "q2", "mensaje": "desde v1"}
    # deleting through /v1 is seen by compat
    assert ana.delete("/v1/topics/El_tiempo").status_code == 204
    assert ana.get("/api/topicos").json() == {"topicos": []}


def test_topic_read_returns_everything_retained(node):
    c = Client(node, mint("ana"))
    c.create_topic("big")
    c.create_topic("small", retention_messages=3)
    for start in (0, 1000):
        items = [{"body": "m%d" % i} for i in range(start, start + 1000)]
        assert c.post("/v1/topics/big/messages/batch", json={"messages": items}).status_code == 201
    got = c.get("/topicos/big/mensajes").json()["mensaje"]
    assert got == ["m%d" % i for i in range(2000)]
    for i in range(5):
        c.publish_topic("small", "s%d" % i)
    assert c.get("/api/topicos/small/mensajes").json()["mensajes"][0]["contenido"] == "s2"
    assert c.get("/topicos/small/mensajes").json()["mensaje"] == ["s2", "s3", "s4"]


def test_slash_runs_merge_on_every_route(node):
    c = Client(node, mint("ana"))
    assert c.put("//v1//queues///sq/").status_code == 201
    assert c.get("/v1/queues//sq").json()["name"] == "sq"
    assert c.post("//colas//sq//publicar", json={"mensaje": "x"}).status_code == 200
    assert c.get("///healthz").status_code == 200


def test_cors(node, momd_factory):
    c = Client(node, mint("ana"))
    r = c.get("//api/topicos", headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert r.headers["Vary"] == "Origin"
    assert r.headers["Access-Control-Expose-Headers"] == "X-Mom-Node, Retry-After"
    assert "Access-Control-Allow-Credentials" not in r.headers
    r = c.get("/v1/queues/nope", headers={"Origin": "http://other.example"})
    assert r.status_code == 404 and r.headers["Access-Control-Allow-Origin"] == \
        "http://other.example"
    r = c.get("/v1/queues", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    assert r.headers["Vary"] == "Origin"
    for path in ("//api/topicos/CNN/suscribir", "/v1/queues/q/receive", "/no/such/route"):
        r = requests.options(node.url(path), timeout=5, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert r.status_code == 204, (path, r.status_code)
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert r.headers["Access-Control-Allow-Headers"] == \
            "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, Mom-Delay-Ms"
        assert r.headers["Access-Control-Max-Age"] == "600"
    # without MOM_CORS_ORIGINS: no CORS headers, and OPTIONS is not a route
    plain = momd_factory()
    r = Client(plain, mint("ana")).get("/v1/queues", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers
    r = requests.options(plain.url("/v1/queues"), headers={"Origin": ORIGIN}, timeout=5)
    assert r.status_code == 405


def test_star_origin(momd_factory):
    m = momd_factory(env={"MOM_CORS_ORIGINS": "*"})
    r = Client(m, mint("ana")).get("/colas", headers={"Origin": "http://any.example:1"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://any.example:1"


@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    yield c
    c.stop_all()
    problems = [p for p in (m.sanitizer_report() for m in c.nodes) if p]
    assert not problems, "\n".join(problems)


def test_compat_through_a_follower(cluster3):
    li = cluster3.leader()
    f = cluster3.nodes[(li + 1) % 3]
    other = cluster3.nodes[(li + 2) % 3]
    ana = api_user(f, "ana")
    r = ana.post("//api/topicos", json={"nombre": "Minuto_30"})
    assert r.status_code == 201 and r.headers["X-Mom-Node"] == str(f.node)
    assert ana.post("/api/topicos/Minuto_30/suscribir").status_code == 200
    assert ana.post("/api/topicos/Minuto_30/mensajes", json={"mensaje": "Gol"}).status_code == 201
    assert ana.post("/colas", json={"nombre": "q1"}).status_code == 200
    assert ana.post("/colas/q1/publicar", json={"mensaje": "uno"}).status_code == 200
    assert ana.post("/api/colas/q1/mensajes", json={"mensaje": "dos"}).status_code == 201
    # reads through the follower see what was committed before them
    assert ana.get("/api/mis-topicos").json() == {"topicos": ["Minuto_30"]}
    assert [m["contenido"] for m in ana.get("/api/topicos/Minuto_30/mensajes").json()["mensajes"]] \
        == ["Gol"]
    assert ana.get("/colas/q1/mensajes").json() == {"cola": "q1", "mensaje": "uno"}
    # replicated: the third node and /v1 see the same resources
    o = Client(other, ana.token)
    assert o.get("/api/colas/q1/mensajes").json()["mensaje"]["contenido"] == "dos"
    assert o.get("/api/colas/q1/mensajes").status_code == 204
    assert [t["name"] for t in o.get("/v1/topics").json()["topics"]] == ["Minuto_30"]
    subs = o.get("/v1/subscriptions").json()["subscriptions"]
    assert [(s["topic"], s["name"]) for s in subs] == [("Minuto_30", "ana")]
    assert node_error(Client(f).get("/colas"), 403) == "Token inválido"
    assert api_error(Client(f).post("/api/auth/login", json={"username": "ana",
                                                             "password": "nope-nope"}), 401)
    assert ana.delete("/api/topicos/Minuto_30").status_code == 200
    assert o.get("/topicos").json() == {"topicos": []}


def test_failed_logins_are_limited_in_the_prototype_shape(momd_factory):
    m = momd_factory(args=["--login-failures", "2"])
    api_user(m, "ana")
    anon = Client(m)
    bad = {"username": "ana", "password": "mala-clave-1"}
    for _ in range(2):
        assert api_error(anon.post("/api/auth/login", json=bad), 401) == "Credenciales inválidas"
    r = anon.post("/api/auth/login", json=bad)
    assert api_error(r, 429) == "Demasiados intentos fallidos; espere e intente de nuevo"
    assert int(r.headers["Retry-After"]) >= 1

# Authentication and authorization: bearer tokens (HS256 secret, RS256/ES256
# public keys, iss/aud, leeway, alg none and algorithm confusion), user
# registration, the token endpoint, admin roles and the generated secret.
# SPDX-License-Identifier: MIT

import os
import re
import stat
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import (HTTP_TIMEOUT_S, SECRET, Client, assert_error, b64url, mint,
                      raw_jwt)

WWW_NO_TOKEN = 'Bearer realm="mom"'


def assert_invalid_token(r):
    assert_error(r, 401, "invalid_token")
    www = r.headers.get("WWW-Authenticate", "")
    assert www.startswith('Bearer realm="mom"'), www
    assert 'error="invalid_token"' in www, www


def get_queues(momd, token):
    h = {"Authorization": "Bearer " + token} if token is not None else {}
    return requests.get(momd.url("/v1/queues"), headers=h, timeout=HTTP_TIMEOUT_S)


def register(momd, username, password, expect=201):
    r = requests.post(momd.url("/v1/auth/users"),
                      json={"username": username, "password": password}, timeout=30)
    if expect is not None:
        assert r.status_code == expect, (r.status_code, r.text)
    return r


def login(momd, username, password):
    return requests.post(momd.url("/v1/auth/token"),
                         json={"username": username, "password": password}, timeout=30)


def is_admin(momd, owner_client, token, name):
    """Creates a queue as owner_client, then tries to delete it with token."""
    owner_client.create_queue(name)
    r = requests.delete(momd.url("/v1/queues/" + name),
                        headers={"Authorization": "Bearer " + token}, timeout=HTTP_TIMEOUT_S)
    assert r.status_code in (204, 403), (r.status_code, r.text)
    if r.status_code == 403:
        assert_error(r, 403, "forbidden")
    return r.status_code == 204


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


# ---- missing and bad tokens --------------------------------------------------

def test_missing_token_is_401_unauthorized(momd):
    for method, path in [("GET", "/v1/queues"), ("PUT", "/v1/queues/q1"),
                         ("POST", "/v1/queues/q1/messages"), ("GET", "/v1/topics"),
                         ("GET", "/v1/subscriptions")]:
        r = requests.request(method, momd.url(path), timeout=HTTP_TIMEOUT_S)
        assert_error(r, 401, "unauthorized")
        assert r.headers.get("WWW-Authenticate") == WWW_NO_TOKEN, (path, r.headers)


def test_non_bearer_scheme_is_401(momd):
    r = requests.get(momd.url("/v1/queues"), headers={"Authorization": "Basic dXNlcjpwYXNz"},
                     timeout=HTTP_TIMEOUT_S)
    assert_error(r, 401, ("unauthorized", "invalid_token"))
    assert r.headers.get("WWW-Authenticate", "").startswith('Bearer realm="mom"')


def _bad_tokens():
    now = int(time.time())
    return {
        "garbage": "not-a-jwt",
        "three_garbage_parts": "abc.def.ghi",
        "expired": mint("alice", exp_in=-120),
        "nbf_future": mint("alice", nbf=now + 120),
        "wrong_secret": mint("alice", secret="some-other-secret-0123456789abcdef"),
        "no_exp": mint("alice", exp_in=None),
        "no_sub": jwt.encode({"exp": now + 3600}, SECRET, algorithm="HS256"),
        "alg_none": raw_jwt({"alg": "none", "typ": "JWT"}, {"sub": "alice", "exp": now + 3600}),
        "alg_none_with_sig": raw_jwt({"alg": "none", "typ": "JWT"},
                                     {"sub": "alice", "exp": now + 3600}) + "c2ln",
        "tampered_payload": _tampered(),
        "exp_string": raw_jwt({"alg": "HS256", "typ": "JWT"},
                              {"sub": "alice", "exp": "tomorrow"}, SECRET.encode()),
    }


def _tampered():
    tok = mint("alice")
    h, p, s = tok.split(".")
    p2 = b64url(b'{"sub":"root","exp":%d,"roles":["admin"]}' % (int(time.time()) + 3600))
    return "%s.%s.%s" % (h, p2, s)


@pytest.mark.parametrize("kind", sorted(_bad_tokens().keys()))
def test_bad_token_is_401_invalid_token(momd, kind):
    tok = _bad_tokens()[kind]
    r = get_queues(momd, tok)
    assert_invalid_token(r)


def test_valid_token_accepted(momd):
    r = get_queues(momd, mint("alice"))
    assert r.status_code == 200, r.text
    assert r.json() == {"queues": []}


def test_exp_and_nbf_within_leeway_accepted(momd):
    now = int(time.time())
    r = get_queues(momd, mint("alice", exp_in=-10))
    assert r.status_code == 200, r.text
    r = get_queues(momd, mint("alice", nbf=now + 10))
    assert r.status_code == 200, r.text
    # just outside the 30 s leeway
    assert_invalid_token(get_queues(momd, mint("alice", exp_in=-45)))
    assert_invalid_token(get_queues(momd, mint("alice", nbf=now + 45)))


def test_rs256_token_rejected_by_hs_only_node(momd):
    tok = mint("alice", algorithm="RS256", key=rsa_key())
    assert_invalid_token(get_queues(momd, tok))


# ---- registration and the token endpoint -------------------------------------

def test_register_and_login(momd):
    register(momd, "alice", "correct horse battery")
    r = login(momd, "alice", "correct horse battery")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"access_token", "token_type", "expires_in"}, body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice"
    assert abs(claims["exp"] - time.time() - 3600) < 60
    tok = body["access_token"]
    r = get_queues(momd, tok)
    assert r.status_code == 200, r.text
    c = Client(momd, tok)
    c.create_queue("mine")
    assert c.get_queue("mine")["owner"] == "alice"
    c.publish("mine", b"hello")
    assert c.receive("mine")[0]["publisher"] == "alice"


def test_register_duplicate_is_409(momd):
    register(momd, "alice", "password-1")
    r = register(momd, "alice", "password-2", expect=None)
    assert_error(r, 409, "conflict")
    # the first password still holds
    assert login(momd, "alice", "password-1").status_code == 200
    assert_error(login(momd, "alice", "password-2"), 401, "invalid_credentials")


@pytest.mark.parametrize("username", ["bad name", "a*b", "", "x" * 129, "caf\u00e9"])
def test_register_bad_username_is_400(momd, username):
    r = register(momd, username, "long enough password", expect=None)
    assert_error(r, 400, ("invalid_name", "bad_request"))


def test_register_password_length(momd):
    assert_error(register(momd, "shorty", "1234567", expect=None), 400, "bad_request")
    assert_error(register(momd, "longy", "p" * 1025, expect=None), 400, "bad_request")
    register(momd, "eight", "12345678")
    register(momd, "maxlen", "p" * 1024)
    assert login(momd, "eight", "12345678").status_code == 200
    assert login(momd, "maxlen", "p" * 1024).status_code == 200


@pytest.mark.parametrize("body", [
    {"username": "alice"},
    {"password": "long enough password"},
    {"username": 5, "password": "long enough password"},
    {"username": "alice", "password": 12345678},
    ["alice", "long enough password"],
])
def test_register_bad_body_is_400(momd, body):
    r = requests.post(momd.url("/v1/auth/users"), json=body, timeout=HTTP_TIMEOUT_S)
    assert_error(r, 400)


def test_register_malformed_json_is_400(momd):
    r = requests.post(momd.url("/v1/auth/users"), data=b'{"username": "a',
                      headers={"Content-Type": "application/json"}, timeout=HTTP_TIMEOUT_S)
    assert_error(r, 400, "invalid_json")
    r = requests.post(momd.url("/v1/auth/token"), data=b"{", timeout=HTTP_TIMEOUT_S)
    assert_error(r, 400, "invalid_json")


def test_registration_disabled_is_403(momd_factory):
    m = momd_factory(args=["--allow-registration", "false"])
    r = register(m, "alice", "long enough password", expect=None)
    assert_error(r, 403, "forbidden")
    assert_error(login(m, "alice", "long enough password"), 401, "invalid_credentials")


def test_token_bad_credentials_is_401(momd):
    register(momd, "alice", "the right password")
    assert_error(login(momd, "alice", "the wrong password"), 401, "invalid_credentials")
    assert_error(login(momd, "nobody", "the right password"), 401, "invalid_credentials")
    r = requests.post(momd.url("/v1/auth/token"), json={"username": "alice"},
                      timeout=HTTP_TIMEOUT_S)
    assert_error(r, 400)


@pytest.mark.parametrize("password", ["", "short", "1234567", "x" * 1025, "x" * 5000])
def test_wrong_password_of_any_length_is_401(momd, password):
    # A password no registration could have set is a wrong password, not bad input.
    register(momd, "alice", "the right password")
    assert_error(login(momd, "alice", password), 401, "invalid_credentials")
    assert_error(login(momd, "nobody", password), 401, "invalid_credentials")


def test_token_ttl_option(momd_factory):
    m = momd_factory(args=["--token-ttl-s", "120"])
    register(m, "alice", "long enough password")
    r = login(m, "alice", "long enough password")
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] == 120
    claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
    assert abs(claims["exp"] - time.time() - 120) < 30


def test_registered_token_survives_other_users(momd):
    register(momd, "alice", "alice password")
    register(momd, "bob", "bob password!")
    ta = login(momd, "alice", "alice password").json()["access_token"]
    tb = login(momd, "bob", "bob password!").json()["access_token"]
    a, b = Client(momd, ta), Client(momd, tb)
    a.create_queue("aq")
    r = b.delete("/v1/queues/aq")
    assert_error(r, 403, "forbidden")


# ---- external keys: RS256 / ES256 ---------------------------------------------

@pytest.mark.parametrize("kind", ["RS256", "ES256"])
def test_public_key_tokens(momd_factory, tmp_path, kind):
    key = rsa_key() if kind == "RS256" else ec_key()
    pem = public_pem(key)
    keyfile = tmp_path / "pub.pem"
    keyfile.write_bytes(pem)
    m = momd_factory(secret=None, args=["--jwt-public-key-file", str(keyfile)])

    good = mint("ext-user", algorithm=kind, key=key)
    r = get_queues(m, good)
    assert r.status_code == 200, r.text
    c = Client(m, good)
    assert c.create_queue("extq")["owner"] == "ext-user"

    # another key of the same kind
    other = rsa_key() if kind == "RS256" else ec_key()
    assert_invalid_token(get_queues(m, mint("ext-user", algorithm=kind, key=other)))
    # expired / nbf in the future, properly signed
    assert_invalid_token(get_queues(m, mint("ext-user", algorithm=kind, key=key, exp_in=-120)))
    assert_invalid_token(get_queues(m, mint("ext-user", algorithm=kind, key=key,
                                            nbf=int(time.time()) + 120)))
    assert_invalid_token(get_queues(m, mint("ext-user", algorithm=kind, key=key, exp_in=None)))
    # algorithm confusion: HS256 signed with the public PEM bytes (exact file bytes)
    now = int(time.time())
    for k in (pem, pem.rstrip(b"\n")):
        conf = raw_jwt({"alg": "HS256", "typ": "JWT"},
                       {"sub": "attacker", "exp": now + 3600, "roles": ["admin"]}, k)
        assert_invalid_token(get_queues(m, conf))
    # alg none
    assert_invalid_token(get_queues(m, raw_jwt({"alg": "none", "typ": "JWT"},
                                               {"sub": "attacker", "exp": now + 3600})))
    # an HS256 token made with some secret the node never saw
    assert_invalid_token(get_queues(m, mint("attacker")))


def test_public_key_node_token_endpoint_uses_generated_secret(momd_factory, tmp_path):
    key = rsa_key()
    keyfile = tmp_path / "pub.pem"
    keyfile.write_bytes(public_pem(key))
    m = momd_factory(secret=None, args=["--jwt-public-key-file", str(keyfile)])
    register(m, "alice", "long enough password")
    r = login(m, "alice", "long enough password")
    assert r.status_code == 200, r.text
    tok = r.json()["access_token"]
    assert get_queues(m, tok).status_code == 200
    # external tokens still work beside it
    assert get_queues(m, mint("ext", algorithm="RS256", key=key)).status_code == 200
    # and the issued token survives a restart (secret kept in the data dir)
    m.restart()
    assert get_queues(m, tok).status_code == 200


def test_issuer_and_audience_enforced(momd_factory):
    m = momd_factory(args=["--jwt-issuer", "https://idp.example", "--jwt-audience", "mom-api"])
    ok = mint("alice", iss="https://idp.example", aud="mom-api")
    assert get_queues(m, ok).status_code == 200
    ok_list = mint("alice", iss="https://idp.example", aud=["other", "mom-api"])
    assert get_queues(m, ok_list).status_code == 200
    for bad in [mint("alice", aud="mom-api"),
                mint("alice", iss="https://evil.example", aud="mom-api"),
                mint("alice", iss="https://idp.example"),
                mint("alice", iss="https://idp.example", aud="other"),
                mint("alice", iss="https://idp.example", aud=["x", "y"])]:
        assert_invalid_token(get_queues(m, bad))


def test_audience_ignored_unless_configured(momd):
    assert get_queues(momd, mint("alice", aud="anything")).status_code == 200
    assert get_queues(momd, mint("alice", iss="https://whoever")).status_code == 200


def test_issuer_only(momd_factory):
    m = momd_factory(args=["--jwt-issuer", "https://idp.example"])
    assert get_queues(m, mint("alice", iss="https://idp.example")).status_code == 200
    assert get_queues(m, mint("alice", iss="https://idp.example", aud="x")).status_code == 200
    assert_invalid_token(get_queues(m, mint("alice")))
    assert_invalid_token(get_queues(m, mint("alice", iss="https://idp.example.evil")))


# ---- admin ----------------------------------------------------------------------

def test_roles_claim_string_or_list(momd, alice):
    assert is_admin(momd, alice, mint("root", roles=["admin"]), "q1")
    assert is_admin(momd, alice, mint("root", roles="admin"), "q2")
    assert is_admin(momd, alice, mint("root", roles=["reader", "admin"]), "q3")
    assert not is_admin(momd, alice, mint("bob"), "q4")
    assert not is_admin(momd, alice, mint("bob", roles="user"), "q5")
    assert not is_admin(momd, alice, mint("bob", roles=["administrator"]), "q6")
    assert not is_admin(momd, alice, mint("bob", roles="superadmin"), "q7")


def test_custom_admin_claim(momd_factory):
    m = momd_factory(args=["--jwt-admin-claim", "groups"])
    alice = Client(m, mint("alice"))
    assert is_admin(m, alice, mint("root", groups=["admin"]), "g1")
    assert is_admin(m, alice, mint("root", groups="admin"), "g2")
    assert not is_admin(m, alice, mint("bob", roles=["admin"]), "g3")


def test_admin_users_option(momd_factory):
    m = momd_factory(args=["--admin-users", "carol,erin"])
    alice = Client(m, mint("alice"))
    register(m, "carol", "carol password")
    register(m, "dave", "dave password")
    tc = login(m, "carol", "carol password").json()["access_token"]
    td = login(m, "dave", "dave password").json()["access_token"]
    assert is_admin(m, alice, tc, "a1")
    assert not is_admin(m, alice, td, "a2")


# ---- generated secret ------------------------------------------------------------

def test_generated_secret_and_admin_token(momd_factory):
    m = momd_factory(secret=None)
    path = os.path.join(m.data_dir, "jwt-secret")
    assert os.path.isfile(path), os.listdir(m.data_dir)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    with open(path, "rb") as f:
        secret_bytes = f.read()
    assert len(secret_bytes.strip()) >= 16
    # the ready-made admin token is in a private file, never in the log
    token_path = os.path.join(m.data_dir, "admin-token")
    assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600
    with open(token_path) as f:
        tok = f.read().strip()
    assert tok and tok not in m.stderr_text(), m.stderr_tail()
    assert "admin token (valid" in m.stderr_text(), m.stderr_tail()
    r = get_queues(m, tok)
    assert r.status_code == 200, r.text
    # registered users work on such a node too
    register(m, "alice", "long enough password")
    register(m, "bob", "bob's long password")
    alice = Client(m, login(m, "alice", "long enough password").json()["access_token"])
    bob = Client(m, login(m, "bob", "bob's long password").json()["access_token"])
    assert is_admin(m, bob, tok, "gen1")
    assert not is_admin(m, bob, alice.token, "gen2")
    # a restart keeps the same secret: old tokens still verify
    m.restart()
    with open(path, "rb") as f:
        assert f.read() == secret_bytes
    assert get_queues(m, tok).status_code == 200
    assert get_queues(m, alice.token).status_code == 200

"""The seed's stack for `make bench-peers`: FastAPI on uvicorn (Debian's
packages) serving an in-memory queue with the routes and answer shapes the
wrk scripts drive against momd (publish.lua, receive_ack.lua), written for
the benchmark only. Bearer tokens are HS256 JWTs checked with PyJWT, and a
verified token is cached (its exp still checked), as momd does. Nothing is
persisted: it is the seed's request path without a disk.
Run: uvicorn --app-dir test/bench peer_fastapi_app:app (env PEER_BENCH_SECRET).
SPDX-License-Identifier: MIT
"""

import collections
import itertools
import json
import os
import time

import jwt
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse

SECRET = os.environ.get("PEER_BENCH_SECRET", "")
app = FastAPI()
queues = {}           # name -> deque of (id, body)
leases = {}           # receipt -> (queue name, id, body)
verified = {}         # token -> exp
ids = itertools.count(1)


def check_token(request):
    h = request.headers.get("authorization", "")
    if not h.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="a bearer token is required")
    token = h[7:]
    exp = verified.get(token)
    if exp is None:
        try:
            exp = jwt.decode(token, SECRET, algorithms=["HS256"])["exp"]
        except (jwt.PyJWTError, KeyError):
            raise HTTPException(status_code=401, detail="the bearer token is invalid")
        verified[token] = exp
    if exp < time.time():
        raise HTTPException(status_code=401, detail="the bearer token has expired")


def queue(name):
    q = queues.get(name)
    if q is None:
        raise HTTPException(status_code=404, detail=f"queue '{name}' does not exist")
    return q


@app.get("/readyz")
async def readyz():
    return {"status": "ok"}


@app.put("/v1/queues/{name}", status_code=201)
async def create_queue(name: str, request: Request):
    check_token(request)
    queues.setdefault(name, collections.deque())
    return {"name": name}


@app.post("/v1/queues/{name}/messages", status_code=201)
async def publish(name: str, request: Request):
    check_token(request)
    q = queue(name)
    body = await request.body()
    mid = next(ids)
    q.append((mid, body))
    return {"id": f"{mid:016d}", "seq": mid}


@app.post("/v1/queues/{name}/messages/batch", status_code=201)
async def publish_batch(name: str, request: Request):
    check_token(request)
    q = queue(name)
    msgs = json.loads(await request.body())["messages"]
    out = []
    for m in msgs:
        mid = next(ids)
        q.append((mid, m["body"].encode()))
        out.append({"id": f"{mid:016d}", "seq": mid})
    return {"messages": out}


@app.post("/v1/queues/{name}/receive")
async def receive(name: str, request: Request):
    check_token(request)
    q = queue(name)
    if not q:
        return {"messages": []}
    mid, body = q.popleft()
    receipt = f"{mid:016d}.{next(ids)}"
    leases[receipt] = (name, mid, body)
    return {"messages": [{"id": f"{mid:016d}", "receipt": receipt,
                          "body": body.decode("utf-8", "replace")}]}


@app.delete("/v1/queues/{name}/messages/{receipt}")
async def ack(name: str, receipt: str, request: Request):
    check_token(request)
    queue(name)
    if leases.pop(receipt, None) is None:
        return JSONResponse({"error": {"code": "lease_expired"}}, status_code=410)
    return Response(status_code=204)

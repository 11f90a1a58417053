/* The prototype's routes over the /v1 handlers. compat_prepare checks the
 * prototype's JSON bodies ({"nombre"}, {"mensaje"}, {"username",
 * "password"}) and rewrites the request into the /v1 one it stands for, so
 * that the same handler builds the same Command (replicated, forwarded by
 * followers) or answers the same read. compat_translate turns the /v1 answer
 * into the prototype's shape: its field names, Spanish messages, and
 * {"error": "..."} under /api or {"detail": "..."} under /colas and /topicos.
 * Subscribing through /api makes the durable subscription named after the
 * user on that topic (start "earliest"); mis-topicos lists the topics of
 * those subscriptions. Owns nothing beyond one request's rewritten body.
 * SPDX-License-Identifier: MIT */
#include "broker/compat.h"

#include "broker/api_error.h"
#include "broker/server_internal.h"
#include "common/clock.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_RULE "^[A-Za-z0-9._-]{1,128}$"
#define TOPIC_PAGE 1000

/* ---- which routes ---- */

enum compat_family compat_family_of_path(const char *path)
{
    while (*path == '/')
        path++;
    size_t n = strcspn(path, "/");
    if (n == 3 && !memcmp(path, "api", 3))
        return COMPAT_API;
    if ((n == 5 && !memcmp(path, "colas", 5)) || (n == 7 && !memcmp(path, "topicos", 7)))
        return COMPAT_NODE;
    return COMPAT_NONE;
}

bool compat_is_route(enum route route)
{
    switch (route) {
    case ROUTE_API_REGISTER:
    case ROUTE_API_LOGIN:
    case ROUTE_API_TOPICS:
    case ROUTE_API_TOPIC_CREATE:
    case ROUTE_API_TOPIC_DELETE:
    case ROUTE_API_TOPIC_PUBLISH:
    case ROUTE_API_TOPIC_READ:
    case ROUTE_API_SUBSCRIBE:
    case ROUTE_API_UNSUBSCRIBE:
    case ROUTE_API_MY_TOPICS:
    case ROUTE_API_QUEUES:
    case ROUTE_API_QUEUE_CREATE:
    case ROUTE_API_QUEUE_DELETE:
    case ROUTE_API_QUEUE_PUBLISH:
    case ROUTE_API_QUEUE_TAKE:
    case ROUTE_NODE_QUEUES:
    case ROUTE_NODE_QUEUE_CREATE:
    case ROUTE_NODE_QUEUE_DELETE:
    case ROUTE_NODE_QUEUE_PUBLISH:
    case ROUTE_NODE_QUEUE_TAKE:
    case ROUTE_NODE_TOPICS:
    case ROUTE_NODE_TOPIC_CREATE:
    case ROUTE_NODE_TOPIC_DELETE:
    case ROUTE_NODE_TOPIC_PUBLISH:
    case ROUTE_NODE_TOPIC_READ: return true;
    default: return false;
    }
}

bool compat_is_public(enum route route)
{
    return route == ROUTE_API_REGISTER || route == ROUTE_API_LOGIN;
}

static bool is_topic_route(enum route r)
{
    switch (r) {
    case ROUTE_API_TOPICS:
    case ROUTE_API_TOPIC_CREATE:
    case ROUTE_API_TOPIC_DELETE:
    case ROUTE_API_TOPIC_PUBLISH:
    case ROUTE_API_TOPIC_READ:
    case ROUTE_API_SUBSCRIBE:
    case ROUTE_API_UNSUBSCRIBE:
    case ROUTE_API_MY_TOPICS:
    case ROUTE_NODE_TOPICS:
    case ROUTE_NODE_TOPIC_CREATE:
    case ROUTE_NODE_TOPIC_DELETE:
    case ROUTE_NODE_TOPIC_PUBLISH:
    case ROUTE_NODE_TOPIC_READ: return true;
    default: return false;
    }
}

/* ---- answers in the prototype's shape ---- */

static void set_json(struct reply *out, int status, cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        reply_set_json(out, 503, "{\"error\":\"Sin memoria\"}");
        return;
    }
    reply_set(out, status, text, strlen(text));
}

static void set_error(struct reply *out, enum compat_family family, int status, const char *fmt,
                      ...) __attribute__((format(printf, 4, 5)));
static void set_error(struct reply *out, enum compat_family family, int status, const char *fmt,
                      ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    if (root)
        cJSON_AddStringToObject(root, family == COMPAT_API ? "error" : "detail", text);
    set_json(out, status, root);
}

static void set_message(struct reply *out, int status, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_message(struct reply *out, int status, const char *key, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    if (root)
        cJSON_AddStringToObject(root, key, text);
    set_json(out, status, root);
}

/* Answers a bad compat request at once, in its family's shape. */
static void send_error(struct request_ctx *rc, int status, const char *text)
{
    struct reply r = {0};
    set_error(&r, rc->compat_family, status, "%s", text);
    rc->compat_family = COMPAT_NONE; /* already in the prototype's shape */
    server_send(rc, &r);
    reply_cleanup(&r);
}

/* ---- requests: the prototype's bodies -> /v1 requests ---- */

/* The string field `key` of a JSON object body. Answers 400 and returns
 * NULL when the body is not a JSON object or the field is missing or not a
 * string. *root must be freed by the caller when a value is returned. */
static const char *body_string(struct request_ctx *rc, const char *key, cJSON **root)
{
    *root = cJSON_ParseWithLength(rc->body, rc->body_len);
    if (!*root || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        send_error(rc, 400, "JSON inválido");
        return NULL;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(*root, key);
    if (!cJSON_IsString(v)) {
        cJSON_Delete(*root);
        char text[128];
        snprintf(text, sizeof text, "Falta el campo '%s' (texto)", key);
        send_error(rc, 400, text);
        return NULL;
    }
    return v->valuestring;
}

static bool valid_name_or_answer(struct request_ctx *rc, const char *name)
{
    if (router_valid_name(name))
        return true;
    send_error(rc, 400, "Nombre inválido: debe cumplir " NAME_RULE);
    return false;
}

static bool rewrite_credentials(struct request_ctx *rc)
{
    cJSON *root = cJSON_ParseWithLength(rc->body, rc->body_len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        send_error(rc, 400, "JSON inválido");
        return false;
    }
    bool ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "username")) &&
              cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "password"));
    cJSON_Delete(root);
    if (!ok) {
        send_error(rc, 400, "Se requieren username y password");
        return false;
    }
    if (rc->compat_route == ROUTE_API_REGISTER) {
        rc->match.route = ROUTE_AUTH_USERS;
        return true;
    }
    /* a login right after registering through another node sees it: the
     * login route passes the read barrier (handlers_dispatch) */
    rc->match.route = ROUTE_AUTH_TOKEN;
    return true;
}

/* POST {"nombre"} -> PUT /v1/{queues|topics}/{nombre} with no settings. */
static bool rewrite_create(struct request_ctx *rc, enum route to)
{
    cJSON *root;
    const char *name = body_string(rc, "nombre", &root);
    if (!name)
        return false;
    bool ok = valid_name_or_answer(rc, name);
    if (ok) {
        snprintf(rc->match.params[0], sizeof rc->match.params[0], "%s", name);
        rc->match.nparams = 1;
        rc->match.route = to;
        rc->body = "";
        rc->body_len = 0;
    }
    cJSON_Delete(root);
    return ok;
}

/* POST {"mensaje"} -> POST /v1/.../messages with the text as the body. */
static bool rewrite_publish(struct request_ctx *rc, enum route to)
{
    cJSON *root;
    const char *text = body_string(rc, "mensaje", &root);
    if (!text)
        return false;
    size_t n = strlen(text);
    rc->compat_body = malloc(n + 1);
    if (!rc->compat_body) {
        cJSON_Delete(root);
        send_error(rc, 503, "Sin memoria");
        return false;
    }
    memcpy(rc->compat_body, text, n + 1);
    cJSON_Delete(root);
    rc->body = rc->compat_body;
    rc->body_len = n;
    rc->content_type = "text/plain; charset=utf-8";
    rc->match.route = to;
    return true;
}

static void add_allow_get(struct request_ctx *rc)
{
    evhtp_headers_add_header(rc->req->headers_out, evhtp_header_new("Allow", "GET", 0, 0));
}

/* The user's own subscription on the topic: named after the user. */
static void rewrite_subscription(struct request_ctx *rc, enum route to)
{
    snprintf(rc->match.params[1], sizeof rc->match.params[1], "%s", rc->id.user);
    rc->match.nparams = 2;
    rc->match.route = to;
    rc->body = to == ROUTE_SUBSCRIPTION_PUT ? "{\"start\":\"earliest\"}" : "";
    rc->body_len = strlen(rc->body);
}

bool compat_prepare(struct request_ctx *rc)
{
    rc->compat_route = rc->match.route;
    switch (rc->match.route) {
    case ROUTE_API_REGISTER:
    case ROUTE_API_LOGIN: return rewrite_credentials(rc);
    case ROUTE_API_TOPICS:
    case ROUTE_NODE_TOPICS: rc->match.route = ROUTE_TOPICS; return true;
    case ROUTE_API_QUEUES:
    case ROUTE_NODE_QUEUES: rc->match.route = ROUTE_QUEUES; return true;
    case ROUTE_API_TOPIC_CREATE:
    case ROUTE_NODE_TOPIC_CREATE: return rewrite_create(rc, ROUTE_TOPIC_PUT);
    case ROUTE_API_QUEUE_CREATE:
    case ROUTE_NODE_QUEUE_CREATE: return rewrite_create(rc, ROUTE_QUEUE_PUT);
    case ROUTE_API_TOPIC_DELETE:
    case ROUTE_NODE_TOPIC_DELETE: rc->match.route = ROUTE_TOPIC_DELETE; return true;
    case ROUTE_API_QUEUE_DELETE:
    case ROUTE_NODE_QUEUE_DELETE: rc->match.route = ROUTE_QUEUE_DELETE; return true;
    case ROUTE_API_TOPIC_PUBLISH:
    case ROUTE_NODE_TOPIC_PUBLISH: return rewrite_publish(rc, ROUTE_TOPIC_PUBLISH);
    case ROUTE_API_QUEUE_PUBLISH:
    case ROUTE_NODE_QUEUE_PUBLISH: return rewrite_publish(rc, ROUTE_QUEUE_PUBLISH);
    case ROUTE_API_TOPIC_READ:
    case ROUTE_NODE_TOPIC_READ:
        rc->match.route = ROUTE_TOPIC_READ;
        rc->query = "from=earliest&max=1000";
        return true;
    case ROUTE_API_QUEUE_TAKE:
    case ROUTE_NODE_QUEUE_TAKE:
        /* one message, removed on delivery; the receive route passes the
         * read barrier, so a follower sees what was committed before */
        if (rc->method == HTTP_HEAD) { /* HEAD must not take a message */
            add_allow_get(rc);
            send_error(rc, 405, "Método no permitido");
            return false;
        }
        if (!valid_name_or_answer(rc, rc->match.params[0]))
            return false;
        rc->match.route = ROUTE_QUEUE_RECEIVE;
        rc->query = "max=1&ack=auto";
        return true;
    case ROUTE_API_SUBSCRIBE: rewrite_subscription(rc, ROUTE_SUBSCRIPTION_PUT); return true;
    case ROUTE_API_UNSUBSCRIBE: rewrite_subscription(rc, ROUTE_SUBSCRIPTION_DELETE); return true;
    case ROUTE_API_MY_TOPICS: rc->match.route = ROUTE_USER_SUBSCRIPTIONS; return true;
    default: send_error(rc, 404, "Ruta no encontrada"); return false;
    }
}

/* ---- answers: /v1 -> the prototype's shape ---- */

/* The error kind of a /v1 answer, from its status and code through the one
 * table (api_error.c); API_ERR_COUNT when none matches. */
static enum api_error error_kind(int status, const char *code)
{
    for (int e = 0; e < API_ERR_COUNT; e++)
        if (api_error_status((enum api_error)e) == status &&
            !strcmp(api_error_code((enum api_error)e), code))
            return (enum api_error)e;
    return API_ERR_COUNT;
}

/* The prototype's status and Spanish text for a /v1 error on this compat
 * route. The switch names every kind, so a new kind needs its text here. */
static int error_text(const struct request_ctx *rc, int status, const char *code,
                      const char *message, char *text, size_t len)
{
    enum route r = rc->compat_route;
    const char *name = rc->match.params[0];
    const char *the = is_topic_route(r) ? "el tópico" : "la cola";
    const char *The = is_topic_route(r) ? "El tópico" : "La cola";
    enum api_error kind = error_kind(status, code);
    switch (kind) {
    case API_ERR_UNAUTHORIZED:
    case API_ERR_INVALID_TOKEN:
        snprintf(text, len, "Token inválido");
        /* the node routes answered 403 for any token problem */
        return rc->compat_family == COMPAT_NODE ? 403 : 401;
    case API_ERR_INVALID_CREDENTIALS: snprintf(text, len, "Credenciales inválidas"); return 401;
    case API_ERR_INVALID_JSON: snprintf(text, len, "JSON inválido"); return status;
    case API_ERR_INVALID_NAME:
        snprintf(text, len, "Nombre inválido: debe cumplir " NAME_RULE);
        return status;
    case API_ERR_BAD_REQUEST:
        if (r == ROUTE_API_LOGIN) { /* a malformed username cannot be anyone's */
            snprintf(text, len, "Credenciales inválidas");
            return 401;
        }
        if (r == ROUTE_API_REGISTER)
            snprintf(text, len,
                     "Usuario o contraseña inválidos: el usuario debe cumplir " NAME_RULE
                     " y la contraseña tener de 8 a 1024 bytes");
        else
            snprintf(text, len, "Solicitud inválida: %s", message);
        return status;
    case API_ERR_OFFSET_OUT_OF_RANGE: snprintf(text, len, "Posición fuera de rango"); return status;
    case API_ERR_FORBIDDEN:
        if (r == ROUTE_API_REGISTER)
            snprintf(text, len, "El registro de usuarios está deshabilitado");
        else if (r == ROUTE_API_TOPIC_DELETE || r == ROUTE_NODE_TOPIC_DELETE ||
                 r == ROUTE_API_QUEUE_DELETE || r == ROUTE_NODE_QUEUE_DELETE)
            snprintf(text, len, "Solo el creador puede eliminar %s '%s'", the, name);
        else
            snprintf(text, len, "No tienes permiso sobre %s '%s'", the, name);
        return status;
    case API_ERR_NOT_FOUND: snprintf(text, len, "Ruta no encontrada"); return status;
    case API_ERR_QUEUE_NOT_FOUND:
        snprintf(text, len, "La cola '%s' no existe", name);
        return status;
    case API_ERR_TOPIC_NOT_FOUND:
        snprintf(text, len, "El tópico '%s' no existe", name);
        return status;
    case API_ERR_SUBSCRIPTION_NOT_FOUND:
        snprintf(text, len, "No estás suscrito al tópico '%s'", name);
        return r == ROUTE_API_UNSUBSCRIBE ? 409 : status;
    case API_ERR_METHOD_NOT_ALLOWED: snprintf(text, len, "Método no permitido"); return status;
    case API_ERR_CONFLICT:
        if (r == ROUTE_API_REGISTER)
            snprintf(text, len, "El usuario ya existe");
        else
            snprintf(text, len, "%s '%s' ya existe", The, name);
        return status;
    case API_ERR_RECEIPT_EXPIRED:
        snprintf(text, len, "El mensaje ya no está reservado para ti");
        return status;
    case API_ERR_LENGTH_REQUIRED:
        snprintf(text, len, "Envíe el cuerpo con Content-Length");
        return status;
    case API_ERR_PAYLOAD_TOO_LARGE:
        snprintf(text, len, "El mensaje es demasiado grande");
        return status;
    case API_ERR_URI_TOO_LONG: snprintf(text, len, "La URL es demasiado larga"); return status;
    case API_ERR_QUEUE_FULL:
        snprintf(text, len, "La cola '%s' está llena; intente más tarde", name);
        return status;
    case API_ERR_TOO_MANY_REQUESTS:
        snprintf(text, len, "Demasiados intentos fallidos; espere e intente de nuevo");
        return status;
    case API_ERR_HEADER_TOO_LARGE:
        snprintf(text, len, "Cabeceras demasiado grandes");
        return status;
    case API_ERR_NOT_APPLIED: snprintf(text, len, "La operación no se pudo aplicar"); return status;
    case API_ERR_HTTP_VERSION: snprintf(text, len, "Se requiere HTTP/1.1"); return status;
    case API_ERR_UNAVAILABLE:
    case API_ERR_STORAGE_UNAVAILABLE:
    case API_ERR_STORAGE_FULL:
        snprintf(text, len, "Servicio no disponible; intente de nuevo");
        return status;
    case API_ERR_COUNT: break;
    }
    snprintf(text, len, "Error: %s", message);
    return status;
}

static void translate_error(struct request_ctx *rc, const struct reply *in, cJSON *v1,
                            struct reply *out)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(v1, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(err, "message");
    char text[700];
    int status = error_text(rc, in->status, cJSON_IsString(code) ? code->valuestring : "",
                            cJSON_IsString(message) ? message->valuestring : "", text, sizeof text);
    set_error(out, rc->compat_family, status, "%s", text);
}

/* {"queues"|"topics":[{"name",...}]} -> {"colas"|"topicos":[names]} */
static void translate_list(const cJSON *v1, const char *from, const char *to, struct reply *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *names = cJSON_AddArrayToObject(root, to);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(v1, from))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(name))
            cJSON_AddItemToArray(names, cJSON_CreateString(name->valuestring));
    }
    set_json(out, 200, root);
}

/* The user's compat subscriptions (named after the user) -> their topics. */
static void translate_my_topics(const struct request_ctx *rc, const cJSON *v1, struct reply *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *topics = cJSON_AddArrayToObject(root, "topicos");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(v1, "subscriptions"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *owner = cJSON_GetObjectItemCaseSensitive(it, "owner");
        const cJSON *topic = cJSON_GetObjectItemCaseSensitive(it, "topic");
        if (cJSON_IsString(name) && cJSON_IsString(owner) && cJSON_IsString(topic) &&
            !strcmp(name->valuestring, rc->id.user) && !strcmp(owner->valuestring, rc->id.user))
            cJSON_AddItemToArray(topics, cJSON_CreateString(topic->valuestring));
    }
    set_json(out, 200, root);
}

static const char *str_field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* One /v1 message -> {"id","emisor","contenido","timestamp"}. The body is
 * its text (UTF-8), or its base64 when it is not text. */
static cJSON *article(const cJSON *m)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", str_field(m, "id"));
    cJSON_AddStringToObject(a, "emisor", str_field(m, "publisher"));
    cJSON_AddStringToObject(a, "contenido", str_field(m, "body"));
    cJSON_AddStringToObject(a, "timestamp", str_field(m, "published_at"));
    return a;
}

/* Appends one page of messages; returns the page's next_offset and whether
 * it held any message. */
static bool add_page(const cJSON *page, bool api, cJSON *list, uint64_t *next)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(page, "messages");
    const cJSON *no = cJSON_GetObjectItemCaseSensitive(page, "next_offset");
    if (cJSON_IsNumber(no))
        *next = (uint64_t)no->valuedouble;
    const cJSON *m;
    bool any = false;
    cJSON_ArrayForEach(m, msgs)
    {
        any = true;
        cJSON_AddItemToArray(list, api ? article(m) : cJSON_CreateString(str_field(m, "body")));
    }
    return any;
}

/* Everything retention holds: the first page came through /v1, the rest
 * is read from the same (already barrier-checked) local state. */
static void translate_topic_read(struct request_ctx *rc, const cJSON *v1, struct reply *out)
{
    bool api = rc->compat_family == COMPAT_API;
    const char *topic = rc->match.params[0];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "topico", topic);
    cJSON *list = cJSON_AddArrayToObject(root, api ? "mensajes" : "mensaje");
    uint64_t next = 0;
    bool more = add_page(v1, api, list, &next) &&
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(v1, "messages")) >= TOPIC_PAGE;
    struct store_caller who = server_caller(rc);
    while (more) {
        struct reply page = {0};
        bool empty = true;
        store_read_topic(rc->srv->store, topic, STORE_FROM_OFFSET, next, TOPIC_PAGE, &who, &page,
                         &empty);
        cJSON *pj =
            page.status == 200 && !empty ? cJSON_ParseWithLength(page.body, page.body_len) : NULL;
        reply_cleanup(&page);
        more = pj && add_page(pj, api, list, &next);
        cJSON_Delete(pj);
    }
    set_json(out, 200, root);
}

static void translate_take(struct request_ctx *rc, const cJSON *v1, struct reply *out)
{
    const char *queue = rc->match.params[0];
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(v1, "messages"), 0);
    if (rc->compat_family == COMPAT_NODE) {
        if (!m) {
            set_message(out, 200, "mensaje", "No hay mensajes en la cola");
            return;
        }
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "cola", queue);
        cJSON_AddStringToObject(root, "mensaje", str_field(m, "body"));
        set_json(out, 200, root);
        return;
    }
    if (!m) {
        reply_set(out, 204, NULL, 0);
        return;
    }
    char now[32];
    clock_format_rfc3339(clock_wall_ms(), now);
    cJSON *root = cJSON_CreateObject();
    cJSON *msg = article(m);
    cJSON_AddBoolToObject(msg, "entregado", true);
    cJSON_AddStringToObject(msg, "receptor", rc->id.user);
    cJSON_AddStringToObject(msg, "fecha_entrega", now);
    cJSON_AddItemToObject(root, "mensaje", msg);
    set_json(out, 200, root);
}

static void translate_success(struct request_ctx *rc, int status, const cJSON *v1,
                              struct reply *out)
{
    const char *name = rc->match.params[0];
    const char *user = rc->id.user;
    cJSON *root;
    switch (rc->compat_route) {
    case ROUTE_API_REGISTER:
        set_message(out, 201, "message", "Usuario registrado exitosamente");
        return;
    case ROUTE_API_LOGIN: {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "token", str_field(v1, "access_token"));
        set_json(out, 200, root);
        return;
    }
    case ROUTE_API_TOPICS:
    case ROUTE_NODE_TOPICS: translate_list(v1, "topics", "topicos", out); return;
    case ROUTE_API_QUEUES:
    case ROUTE_NODE_QUEUES: translate_list(v1, "queues", "colas", out); return;
    case ROUTE_API_TOPIC_CREATE:
    case ROUTE_API_QUEUE_CREATE: {
        bool topic = rc->compat_route == ROUTE_API_TOPIC_CREATE;
        if (status != 201) { /* 200: it existed already */
            set_error(out, COMPAT_API, 409, "%s '%s' ya existe", topic ? "El tópico" : "La cola",
                      name);
            return;
        }
        char text[300];
        snprintf(text, sizeof text,
                 topic ? "Tópico '%s' creado exitosamente" : "Cola '%s' creada exitosamente", name);
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "mensaje", text);
        cJSON_AddStringToObject(root, topic ? "topico_id" : "cola_id", name);
        set_json(out, 201, root);
        return;
    }
    case ROUTE_NODE_TOPIC_CREATE:
    case ROUTE_NODE_QUEUE_CREATE: {
        bool topic = rc->compat_route == ROUTE_NODE_TOPIC_CREATE;
        if (status != 201)
            set_error(out, COMPAT_NODE, 400, "%s '%s' ya existe", topic ? "El tópico" : "La cola",
                      name);
        else
            set_message(out, 200, "mensaje",
                        topic ? "Tópico '%s' creado por %s" : "Cola '%s' creada por %s", name,
                        user);
        return;
    }
    case ROUTE_API_TOPIC_DELETE:
        set_message(out, 200, "mensaje", "Tópico '%s' eliminado exitosamente", name);
        return;
    case ROUTE_API_QUEUE_DELETE:
        set_message(out, 200, "mensaje", "Cola '%s' eliminada exitosamente", name);
        return;
    case ROUTE_NODE_TOPIC_DELETE:
        set_message(out, 200, "mensaje", "Tópico '%s' eliminado", name);
        return;
    case ROUTE_NODE_QUEUE_DELETE:
        set_message(out, 200, "mensaje", "Cola '%s' eliminada", name);
        return;
    case ROUTE_API_TOPIC_PUBLISH:
    case ROUTE_API_QUEUE_PUBLISH:
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "mensaje",
                                rc->compat_route == ROUTE_API_TOPIC_PUBLISH
                                    ? "Mensaje enviado exitosamente al tópico"
                                    : "Mensaje enviado exitosamente a la cola");
        cJSON_AddStringToObject(root, "mensaje_id", str_field(v1, "id"));
        set_json(out, 201, root);
        return;
    case ROUTE_NODE_TOPIC_PUBLISH:
    case ROUTE_NODE_QUEUE_PUBLISH:
        set_message(out, 200, "mensaje", "Mensaje publicado exitosamente");
        return;
    case ROUTE_API_TOPIC_READ:
    case ROUTE_NODE_TOPIC_READ: translate_topic_read(rc, v1, out); return;
    case ROUTE_API_QUEUE_TAKE:
    case ROUTE_NODE_QUEUE_TAKE: translate_take(rc, v1, out); return;
    case ROUTE_API_SUBSCRIBE:
        if (status != 201)
            set_error(out, COMPAT_API, 409, "Ya estás suscrito al tópico '%s'", name);
        else
            set_message(out, 200, "mensaje", "Suscripción exitosa al tópico '%s'", name);
        return;
    case ROUTE_API_UNSUBSCRIBE:
        set_message(out, 200, "mensaje", "Suscripción al tópico '%s' cancelada", name);
        return;
    case ROUTE_API_MY_TOPICS: translate_my_topics(rc, v1, out); return;
    default: set_error(out, rc->compat_family, 500, "Respuesta inesperada"); return;
    }
}

bool compat_translate(struct request_ctx *rc, const struct reply *in, struct reply *out)
{
    if (rc->compat_family == COMPAT_NONE)
        return false;
    cJSON *v1 = in->body_len ? cJSON_ParseWithLength(in->body, in->body_len) : NULL;
    if (in->status >= 400)
        translate_error(rc, in, v1, out);
    else if (compat_is_route(rc->compat_route))
        translate_success(rc, in->status, v1, out);
    else
        set_error(out, rc->compat_family, 500, "Respuesta inesperada");
    cJSON_Delete(v1);
    return true;
}

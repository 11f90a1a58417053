/* MOM_DEMO=1: the prototype's demo data, made once per cluster as ordinary
 * replicated Commands proposed by the leader: the magazines CNN, BBC,
 * El_tiempo and Minuto_30 with a few sample articles each, the queues q1 and
 * q2, the topics t1 and t3, all owned by the user `admin`, who is registered
 * last with MOM_DEMO_PASSWORD or a generated password (logged once, by the
 * leader that registers it).
 *
 * "Once" is read from the replicated state, never from local files: the
 * registered user `admin` marks a cluster whose demo data exists. Only a
 * leader that has applied everything committed before its term
 * (node_ready) looks, so it sees what an earlier leader did. A leader that
 * lost its term half-way leaves a prefix; the next one completes it:
 * creating an existing topic or queue is skipped, a magazine gets its
 * articles only while it is empty, and each magazine's articles are one
 * batch with an Idempotency-Key, so a retry within the store's dedup window
 * stores nothing twice. After proposing, the leader waits longer than a
 * commit can take before it looks again.
 * SPDX-License-Identifier: MIT */
#include "broker/demo.h"

#include "broker/server_internal.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "replication/node.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define DEMO_USER "admin"
#define DEMO_CHECK_MS 1000
#define DEMO_ARTICLE_TYPE "text/plain; charset=utf-8"

struct magazine {
    const char *name;
    const char *articles[5];
};

/* Sample articles written for this project. */
static const struct magazine magazines[] = {
    {"CNN",
     {"Científicos presentan un satélite del tamaño de una caja de zapatos que medirá la "
      "calidad del aire en ciudades de América Latina.",
      "La bolsa cierra la semana con ganancias moderadas tras los datos de empleo.",
      "Un equipo de rescate encuentra con vida a un excursionista perdido durante tres días en "
      "la montaña.",
      "Las aerolíneas anuncian nuevas rutas directas entre Bogotá y varias capitales europeas.",
      NULL}},
    {"BBC",
     {"El festival de cine independiente abre con una película rodada íntegramente con "
      "teléfonos móviles.",
      "Investigadores descubren una nueva especie de rana en los bosques nublados de los Andes.",
      "La ciudad prueba autobuses eléctricos en sus rutas nocturnas durante seis meses.", NULL}},
    {"El_tiempo",
     {"Pronóstico: lluvias en la tarde sobre el Valle de Aburrá y cielo despejado en la noche.",
      "Alerta amarilla por crecientes súbitas en ríos de la región andina.",
      "Temperaturas de hasta 34 grados en la costa Caribe durante el fin de semana.", NULL}},
    {"Minuto_30",
     {"El equipo local remonta en el segundo tiempo y gana 3 a 2 en el clásico.",
      "La selección convoca a cinco jugadores jóvenes para los partidos de eliminatoria.",
      "Récord de asistencia en la maratón de la ciudad: más de doce mil corredores.",
      "Final de infarto en el torneo de baloncesto, decidida en el último segundo.", NULL}},
};

static const char *const plain_topics[] = {"t1", "t3"};
static const char *const queues[] = {"q1", "q2"};

int demo_check_config(const struct config *cfg)
{
    size_t n = strlen(cfg->demo_password);
    if (cfg->demo && n && (n < 8 || n > 1024)) {
        log_error("MOM_DEMO_PASSWORD must be 8 to 1024 bytes");
        return MOM_ERR_INVALID;
    }
    return MOM_OK;
}

static void init_command(struct command *cmd, pb_size_t kind)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->pb.which_kind = kind;
    snprintf(cmd->pb.user, sizeof cmd->pb.user, "%s", DEMO_USER);
    cmd->pb.admin = true;
}

static int create_topic(struct server *s, const char *name)
{
    if (store_topic_exists(s->store, name))
        return MOM_OK;
    struct command cmd;
    init_command(&cmd, mom_v1_Command_create_topic_tag);
    mom_v1_CreateTopic *ct = &cmd.pb.kind.create_topic;
    struct parse_error err;
    if (http_parse_topic_settings("", 0, &ct->settings, &err) != 0)
        return MOM_ERR_INVALID;
    ct->has_settings = true;
    snprintf(ct->name, sizeof ct->name, "%s", name);
    return server_propose_internal(s, &cmd);
}

static int publish_articles(struct server *s, const struct magazine *m)
{
    uint64_t next;
    if (store_topic_next_offset(s->store, m->name, &next) && next > 0)
        return MOM_OK; /* it has its articles (or readers' own messages) */
    struct command_item items[5];
    size_t n = 0;
    for (; n < 5 && m->articles[n]; n++) {
        memset(&items[n], 0, sizeof items[n]);
        items[n].body = (const uint8_t *)m->articles[n];
        items[n].body_len = strlen(m->articles[n]);
        snprintf(items[n].content_type, sizeof items[n].content_type, "%s", DEMO_ARTICLE_TYPE);
    }
    struct command cmd;
    init_command(&cmd, mom_v1_Command_publish_tag);
    mom_v1_Publish *pub = &cmd.pb.kind.publish;
    pub->kind = mom_v1_ResourceKind_TOPIC;
    pub->batch = true;
    snprintf(pub->name, sizeof pub->name, "%s", m->name);
    snprintf(pub->idempotency_key, sizeof pub->idempotency_key, "mom-demo-articles-%s", m->name);
    cmd.items = items;
    cmd.item_count = n;
    return server_propose_internal(s, &cmd);
}

static int create_queue(struct server *s, const char *name)
{
    if (store_queue_exists(s->store, name))
        return MOM_OK;
    struct command cmd;
    init_command(&cmd, mom_v1_Command_create_queue_tag);
    mom_v1_CreateQueue *cq = &cmd.pb.kind.create_queue;
    struct parse_error err;
    if (http_parse_queue_settings(name, "", 0, &cq->settings, &err) != 0)
        return MOM_ERR_INVALID;
    cq->has_settings = true;
    snprintf(cq->name, sizeof cq->name, "%s", name);
    return server_propose_internal(s, &cmd);
}

static int register_admin(struct server *s)
{
    char generated[33];
    const char *password = s->cfg->demo_password;
    if (!password[0]) {
        unsigned char raw[16];
        if (RAND_bytes(raw, sizeof raw) != 1)
            return MOM_ERR_IO;
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(generated + 2 * i, 3, "%02x", raw[i]);
        password = generated;
    }
    struct command cmd;
    init_command(&cmd, mom_v1_Command_register_user_tag);
    mom_v1_RegisterUser *ru = &cmd.pb.kind.register_user;
    int rc =
        auth_password_hash(password, strlen(password), ru->password_hash, sizeof ru->password_hash);
    if (rc != MOM_OK)
        return rc;
    snprintf(ru->username, sizeof ru->username, "%s", DEMO_USER);
    rc = server_propose_internal(s, &cmd);
    if (rc == MOM_OK) {
        if (password == generated)
            log_info("demo data: user %s, generated password %s (shown once)", DEMO_USER,
                     generated);
        else
            log_info("demo data: user %s, password from MOM_DEMO_PASSWORD", DEMO_USER);
    }
    return rc;
}

static int propose_all(struct server *s)
{
    int rc = MOM_OK;
    for (size_t i = 0; rc == MOM_OK && i < sizeof magazines / sizeof magazines[0]; i++) {
        rc = create_topic(s, magazines[i].name);
        if (rc == MOM_OK)
            rc = publish_articles(s, &magazines[i]);
    }
    for (size_t i = 0; rc == MOM_OK && i < sizeof plain_topics / sizeof plain_topics[0]; i++)
        rc = create_topic(s, plain_topics[i]);
    for (size_t i = 0; rc == MOM_OK && i < sizeof queues / sizeof queues[0]; i++)
        rc = create_queue(s, queues[i]);
    if (rc == MOM_OK)
        rc = register_admin(s); /* last: it marks the demo data as made */
    return rc;
}

void demo_on_cron(struct server *s, struct demo_state *d)
{
    if (!s->cfg->demo || d->done)
        return;
    uint64_t now = clock_mono_ms();
    if (now < d->next_check_ms)
        return;
    d->next_check_ms = now + DEMO_CHECK_MS;
    if (store_user_password_hash(s->store, DEMO_USER)) {
        d->done = true;
        return;
    }
    if (!node_is_leader(s->node) || !node_ready(s->node) || !node_writable(s->node))
        return;
    log_info("demo data: creating the prototype's magazines, queues and user %s", DEMO_USER);
    int rc = propose_all(s);
    if (rc != MOM_OK)
        log_warn("demo data: a proposal failed (%s); retrying later", mom_strerror(rc));
    /* whatever was proposed commits or fails before the next look */
    d->next_check_ms = now + s->cfg->commit_timeout_ms + DEMO_CHECK_MS;
}

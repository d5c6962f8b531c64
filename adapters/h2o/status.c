/* status.c: GET /health and GET /ready. */
#include "status.h"

#include "respond.h"

#include <string.h>

struct ready_handler {
    h2o_handler_t super;
    struct committer *committer;
};

static int on_health(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    static const char body[] = "{\"status\":\"ok\"}\n";
    respond(req, 200, "OK", "application/json", body, sizeof(body) - 1);
    return 0;
}

/* Ready while the last write succeeded and no shutdown is under way; otherwise 503 with
 * the reason. */
static int on_ready(h2o_handler_t *self, h2o_req_t *req)
{
    struct readiness_view view;
    committer_view(((struct ready_handler *)self)->committer, &view);
    if (view.ready) {
        static const char body[] = "{\"status\":\"ready\"}\n";
        respond(req, 200, "OK", "application/json", body, sizeof(body) - 1);
        return 0;
    }
    struct strbuf *sb = respond_scratch();
    strbuf_puts(sb, "{\"status\":\"not ready\",\"reason\":\"");
    strbuf_json(sb, view.reason, strlen(view.reason));
    strbuf_puts(sb, "\"}\n");
    respond_sb(req, 503, "Service Unavailable", "application/json", sb);
    return 0;
}

h2o_handler_t *status_health_register(h2o_pathconf_t *pathconf)
{
    h2o_handler_t *h = h2o_create_handler(pathconf, sizeof(*h));
    h->on_req = on_health;
    return h;
}

h2o_handler_t *status_ready_register(h2o_pathconf_t *pathconf, struct committer *committer)
{
    struct ready_handler *h = (void *)h2o_create_handler(pathconf, sizeof(*h));
    h->committer = committer;
    h->super.on_req = on_ready;
    return &h->super;
}

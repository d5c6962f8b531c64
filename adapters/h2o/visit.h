/*
 * visit.h: the counter's routes. GET / counts a visit and answers its number once the
 * committer has it (an HTML page, or JSON when the client prefers it); HEAD / answers the
 * page without counting; GET /visits answers the count as JSON, from memory.
 */
#ifndef VISITS_VISIT_H
#define VISITS_VISIT_H

#include "committer.h"

#include <h2o.h>
#include <stddef.h>

struct visit_config {
    struct committer *committer;
    const char *pod_name;     /* shown in every answer */
    const char *counter_path; /* named when a visit was not counted */
};

/* The handlers of "/" and "/visits", created on pathconf (see router.h). */
h2o_handler_t *visit_register(h2o_pathconf_t *pathconf, const struct visit_config *cfg);
h2o_handler_t *visit_count_register(h2o_pathconf_t *pathconf, const struct visit_config *cfg);
/* ctx's thread: visits of its loop still waiting for the committer (the handler of "/"). */
size_t visit_pending(h2o_handler_t *visit, h2o_context_t *ctx);

#endif /* VISITS_VISIT_H */

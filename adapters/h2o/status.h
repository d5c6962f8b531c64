/* status.h: GET /health (the process answers) and GET /ready (the counter is writable). */
#ifndef VISITS_STATUS_H
#define VISITS_STATUS_H

#include "committer.h"

#include <h2o.h>

/* The handlers of "/health" and "/ready", created on pathconf (see router.h). */
h2o_handler_t *status_health_register(h2o_pathconf_t *pathconf);
h2o_handler_t *status_ready_register(h2o_pathconf_t *pathconf, struct committer *committer);

#endif /* VISITS_STATUS_H */

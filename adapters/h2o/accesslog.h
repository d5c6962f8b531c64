/*
 * accesslog.h: what is recorded of every request once it is answered: its line in the
 * access log (stdout, through the log writer) and its count in the request metrics.
 */
#ifndef VISITS_ACCESSLOG_H
#define VISITS_ACCESSLOG_H

#include "reqstats.h"

#include <h2o.h>

/* The logger of pathconf's requests; each event loop counts into its own part of stats. */
h2o_logger_t *accesslog_register(h2o_pathconf_t *pathconf, struct reqstats *stats);
/* ctx's thread, after each turn of its loop and at its end: hands the buffered lines to the
 * log writer. Never blocks. */
void accesslog_flush(h2o_logger_t *logger, h2o_context_t *ctx);

#endif /* VISITS_ACCESSLOG_H */

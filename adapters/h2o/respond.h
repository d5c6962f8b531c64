/*
 * respond.h: what every handler needs to answer a request: the response itself, a body
 * buffer, content negotiation, the head of the HTML pages, and a guard for requests that
 * wait for something while their client may go away.
 */
#ifndef VISITS_RESPOND_H
#define VISITS_RESPOND_H

#include "text.h"

#include <h2o.h>
#include <stdint.h>

/* Sends status and body (copied) with a Content-Length, Content-Type type and
 * Cache-Control: no-store; HEAD gets the headers only. */
void respond(h2o_req_t *req, int status, const char *reason, const char *type, const char *body,
             size_t len);
/* ... the body built in sb (500 when it ran out of memory), then empties sb. */
void respond_sb(h2o_req_t *req, int status, const char *reason, const char *type,
                struct strbuf *sb);
/* A JSON error: {"status":STATUS,"error":"MESSAGE"}. */
void respond_error(h2o_req_t *req, int status, const char *reason, const char *message);
void respond_header(h2o_req_t *req, const h2o_token_t *token, const char *value);

/* The calling event loop's buffer for building a body, emptied (respond_sb copies it out,
 * so it is free again once the response is sent). */
struct strbuf *respond_scratch(void);
/* At the end of an event loop's thread: frees its buffer. */
void respond_thread_exit(void);

enum respond_format { RESPOND_JSON, RESPOND_HTML };
/* The format to answer in: the other one than fallback only when the request's Accept
 * rates it above zero and above fallback. Adds "Vary: Accept" to the response. */
enum respond_format respond_negotiate(h2o_req_t *req, enum respond_format fallback);

/* The start of an HTML page up to its <body>, titled "BEFORE N AFTER". */
void respond_page_head(struct strbuf *sb, const char *before, uint64_t n, const char *after);

/* Calls on_gone(data) when h2o disposes of req (its client went away) before the guard
 * is released; after that, req must not be touched. Release it before answering. */
struct respond_guard;
struct respond_guard *respond_guard(h2o_req_t *req, void (*on_gone)(void *data), void *data);
void respond_guard_release(struct respond_guard *g);

#endif /* VISITS_RESPOND_H */

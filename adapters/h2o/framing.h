/*
 * framing.h: is a request framed unambiguously (RFC 9112 6.3), and which path does its
 * target name (RFC 9112 3.2)?
 *
 * libh2o 2.2.5 parses HTTP/1 itself and takes the first Content-Length, or chunked when a
 * Transfer-Encoding is present; a proxy in front may pick the other and see a different
 * request boundary (request smuggling). Those requests are refused here, before routing,
 * with 400 and the connection closed: nothing after them on the connection is read.
 */
#ifndef VISITS_FRAMING_H
#define VISITS_FRAMING_H

#include <h2o.h>

/* NULL if req may be routed; otherwise why not (a static string) and req must be answered
 * 400 on a connection that closes after it:
 *   - HTTP/1: Content-Length together with Transfer-Encoding; Content-Length values that
 *     differ; more than one Transfer-Encoding; Transfer-Encoding in HTTP/1.0; a framing
 *     header continued on a folded line;
 *   - HTTP/2: an empty :path, or one that is neither an absolute path nor "*";
 *   - an absolute-form target whose scheme is not http or https.
 * An absolute-form target (GET http://host/visits?x HTTP/1.1) is accepted: its path
 * replaces req->path_normalized (and query_at), so that it is routed and counted in the
 * metrics by "/visits". */
const char *framing_check(h2o_req_t *req);

#endif /* VISITS_FRAMING_H */

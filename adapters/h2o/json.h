/* json.h: a strict reader of a peer's answer to GET /visits. */
#ifndef VISITS_JSON_H
#define VISITS_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Reads a peer's GET /visits body: one JSON object with "visits" (an integer
 * 0..UINT64_MAX) and "pod" (1..253 characters, no control characters; copied into pod).
 * Returns 0, or -1 with what is wrong in err ("not JSON: ... at byte N", "wrong shape:
 * ..."). */
int peer_answer_parse(const char *body, size_t len, uint64_t *visits, char *pod, size_t pod_size,
                      char *err, size_t errsize);

#endif /* VISITS_JSON_H */

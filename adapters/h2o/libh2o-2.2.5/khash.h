/*
 * khash.h: what <h2o/http2_internal.h> of libh2o 2.2.5 needs from klib's khash.h, which
 * Debian's libh2o-evloop-dev does not install. Only guard.c includes that header (see its
 * comment), and it only reads fields of the connection: the stream map stays opaque.
 *
 * The map's type is an incomplete struct (h2o_http2_conn_t holds a pointer to it). The map
 * functions that the header's inline h2o_http2_conn_get_stream() names are declared and
 * defined nowhere: calling it is a link error, never a silent misuse of libh2o's memory.
 */
#ifndef VISITS_LIBH2O_KHASH_H
#define VISITS_LIBH2O_KHASH_H

#include <stdint.h>

typedef uint32_t khint_t;
typedef khint_t khiter_t;

#define khash_t(name) struct visits_kh_##name
#define KHASH_MAP_INIT_INT64(name, khval_t) struct visits_kh_##name;

khint_t visits_libh2o_khash_unavailable(const void *h);
void *visits_libh2o_khash_value_unavailable(const void *h, khint_t i);
#define kh_get(name, h, key) visits_libh2o_khash_unavailable(h)
#define kh_end(h) visits_libh2o_khash_unavailable(h)
#define kh_val(h, i) visits_libh2o_khash_value_unavailable((h), (i))

#endif /* VISITS_LIBH2O_KHASH_H */

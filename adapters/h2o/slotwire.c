/*
 * slotwire.c: GET /slots answers, rendered with the server's string buffer and read with
 * json-c (Debian's libjson-c 0.16). json-c keeps integers up to 18446744073709551615 and
 * so covers a counter's whole range, but a larger literal comes back as that limit (its
 * json_parse_uint64 ignores strtoull's ERANGE): a lexical pass refuses such literals
 * before json-c reads the body.
 */
#include "slotwire.h"

#include <json-c/json.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SLOTS_DEPTH 4 /* object > "slots" array > slot object > value */

void slotwire_render(struct strbuf *sb, const char *pod, const char *own_id, uint64_t own_value,
                     const struct slotmap *replicas)
{
    strbuf_lit(sb, "{\"pod\":\"");
    strbuf_json(sb, pod, strlen(pod));
    strbuf_lit(sb, "\",\"slot\":\"");
    strbuf_puts(sb, own_id); /* ids need no escape */
    strbuf_lit(sb, "\",\"slots\":[{\"slot\":\"");
    strbuf_puts(sb, own_id);
    strbuf_lit(sb, "\",\"visits\":");
    strbuf_u64(sb, own_value);
    strbuf_lit(sb, "}");
    for (size_t i = 0; i < replicas->n; i++) {
        strbuf_lit(sb, ",{\"slot\":\"");
        strbuf_puts(sb, replicas->s[i].id);
        strbuf_lit(sb, "\",\"visits\":");
        strbuf_u64(sb, replicas->s[i].value);
        strbuf_lit(sb, "}");
    }
    strbuf_lit(sb, "]}\n");
}

void slotwire_free(struct slots_answer *a)
{
    slotmap_free(&a->slots);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return -1;
}

/* Every integer literal of body (outside strings, not part of a fraction or exponent)
 * within 0..UINT64_MAX in magnitude; -1 with the first one that is not. */
static int check_integers(const char *body, size_t len, char *err, size_t errsize)
{
    static const char max[] = "18446744073709551615";
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character, whatever it is */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
            continue;
        }
        if (c < '0' || c > '9')
            continue;
        size_t start = i;
        while (i < len && body[i] >= '0' && body[i] <= '9')
            i++;
        size_t digits = i - start;
        int fraction = i < len && (body[i] == '.' || body[i] == 'e' || body[i] == 'E');
        size_t skip = 0;
        while (skip + 1 < digits && body[start + skip] == '0')
            skip++; /* json-c refuses leading zeros itself; count only the value's digits */
        if (!fraction && (digits - skip > sizeof(max) - 1 ||
                          (digits - skip == sizeof(max) - 1 &&
                           memcmp(body + start + skip, max, sizeof(max) - 1) > 0)))
            return fail(err, errsize, "number out of range at byte %zu (integers are 0..%s here)",
                        start, max);
        i--; /* the loop's i++ */
    }
    return 0;
}

/* The string member name of obj into *s (len bytes), or -1 with what is wrong. */
static int string_member(json_object *obj, const char *name, const char **s, size_t *len,
                         const char *where, char *err, size_t errsize)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, name, &v))
        return fail(err, errsize, "wrong shape: %sno \"%s\" member", where, name);
    if (!json_object_is_type(v, json_type_string))
        return fail(err, errsize, "wrong shape: %s\"%s\" is not a string", where, name);
    *s = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return 0;
}

static int read_slot(json_object *e, size_t i, struct slots_answer *out, char *err, size_t errsize)
{
    char where[48], why[200];
    const char *id = NULL;
    size_t idlen = 0;
    json_object *v;
    snprintf(where, sizeof(where), "slots[%zu]: ", i);
    if (!json_object_is_type(e, json_type_object))
        return fail(err, errsize, "wrong shape: %snot an object", where);
    if (string_member(e, "slot", &id, &idlen, where, err, errsize) != 0)
        return -1;
    if (memchr(id, '\0', idlen) != NULL ||
        slot_id_parse(id, idlen, NULL, NULL, why, sizeof(why)) != 0)
        return fail(err, errsize, "%s\"slot\": %s", where,
                    memchr(id, '\0', idlen) != NULL ? "a NUL byte" : why);
    if (!json_object_object_get_ex(e, "visits", &v))
        return fail(err, errsize, "wrong shape: %sno \"visits\" member", where);
    if (!json_object_is_type(v, json_type_int))
        return fail(err, errsize, "wrong shape: %s\"visits\" is not an integer", where);
    uint64_t value = json_object_get_uint64(v);
    if (value == 0 && json_object_get_int64(v) < 0)
        return fail(err, errsize, "%s\"visits\" is negative (%lld)", where,
                    (long long)json_object_get_int64(v));
    if (slotmap_find(&out->slots, id) != NULL)
        return fail(err, errsize, "slot %.*s given twice", (int)idlen, id);
    int rc = slotmap_raise(&out->slots, id, value);
    if (rc == -ENOMEM)
        return fail(err, errsize, "out of memory");
    return rc < 0 ? fail(err, errsize, "more than %d slots", SLOTS_MAX) : 0;
}

static int read_answer(json_object *root, struct slots_answer *out, char *err, size_t errsize)
{
    const char *id = NULL;
    size_t idlen = 0;
    char why[200];
    json_object *slots;
    if (!json_object_is_type(root, json_type_object))
        return fail(err, errsize, "wrong shape: not a JSON object");
    if (string_member(root, "slot", &id, &idlen, "", err, errsize) != 0)
        return -1;
    if (memchr(id, '\0', idlen) != NULL ||
        slot_id_parse(id, idlen, out->pod, NULL, why, sizeof(why)) != 0)
        return fail(err, errsize, "\"slot\": %s",
                    memchr(id, '\0', idlen) != NULL ? "a NUL byte" : why);
    memcpy(out->slot, id, idlen + 1);
    if (!json_object_object_get_ex(root, "slots", &slots))
        return fail(err, errsize, "wrong shape: no \"slots\" member");
    if (!json_object_is_type(slots, json_type_array))
        return fail(err, errsize, "wrong shape: \"slots\" is not an array");
    size_t n = json_object_array_length(slots);
    if (n > SLOTS_MAX)
        return fail(err, errsize, "\"slots\" has %zu entries, at most %d", n, SLOTS_MAX);
    for (size_t i = 0; i < n; i++)
        if (read_slot(json_object_array_get_idx(slots, i), i, out, err, errsize) != 0)
            return -1;
    return 0;
}

int slotwire_parse(const char *body, size_t len, struct slots_answer *out, char *err,
                   size_t errsize)
{
    memset(out, 0, sizeof(*out));
    slotmap_init(&out->slots);
    if (len > SLOTS_BODY_MAX)
        return fail(err, errsize, "%zu bytes, at most %u", len, SLOTS_BODY_MAX);
    if (check_integers(body, len, err, errsize) != 0)
        return -1;
    json_tokener *tok = json_tokener_new_ex(SLOTS_DEPTH);
    if (tok == NULL)
        return fail(err, errsize, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    int rc;
    if (root == NULL) {
        if (jerr == json_tokener_continue || jerr == json_tokener_success)
            rc = fail(err, errsize, "not JSON: %s", len == 0 ? "empty" : "cut short");
        else if (jerr == json_tokener_error_depth)
            rc =
                fail(err, errsize, "not JSON: nested deeper than %d at byte %zu", SLOTS_DEPTH, end);
        else
            rc = fail(err, errsize, "not JSON: %s at byte %zu", json_tokener_error_desc(jerr), end);
    } else {
        while (end < len &&
               (body[end] == ' ' || body[end] == '\t' || body[end] == '\n' || body[end] == '\r'))
            end++;
        if (end < len)
            rc = fail(err, errsize, "not JSON: trailing data at byte %zu", end);
        else
            rc = read_answer(root, out, err, errsize);
    }
    json_object_put(root);
    json_tokener_free(tok);
    if (rc != 0)
        slotmap_free(&out->slots);
    return rc;
}

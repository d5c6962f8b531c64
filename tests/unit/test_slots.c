/*
 * test_slots.c: the pure parts of visits-server's cluster count, compiled from
 * adapters/h2o (they need no libh2o): slot ids (slotid.c), the merge of slot maps
 * (slotmap.c) and the reader of GET /slots answers (slotwire.c, json-c).
 *
 * The merge is checked as a property over random maps: commutative, associative,
 * idempotent and monotone (no slot and no total ever lower than in either input), and
 * folding answers in any order gives one result. The maps are drawn from a small pool of
 * ids (so that they overlap) with values at the edges of the range; the seed is printed
 * and can be given again with VISITS_PROPERTY_SEED=N.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "slotid.h"
#include "slotmap.h"
#include "slotwire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VOL "0123456789abcdef"

/* ---- slot ids --------------------------------------------------------------------------- */

static void assert_id(const char *pod, const char *want)
{
    char id[SLOT_ID_MAX + 1], back[SLOT_POD_MAX + 1], vol[SLOT_VOLUME_LEN + 1], err[200];
    assert_int_equal(slot_id_make(pod, VOL, id), 0);
    assert_string_equal(id, want);
    assert_int_equal(slot_id_parse(id, strlen(id), back, vol, err, sizeof(err)), 0);
    assert_string_equal(back, pod);
    assert_string_equal(vol, VOL);
}

static void assert_bad_id(const char *id, const char *mention)
{
    char err[200] = "";
    assert_int_equal(slot_id_parse(id, strlen(id), NULL, NULL, err, sizeof(err)), -1);
    if (strstr(err, mention) == NULL)
        fail_msg("slot id \"%s\": error \"%s\" does not mention \"%s\"", id, err, mention);
}

static void test_slot_ids(void **state)
{
    (void)state;
    /* StatefulSet names stay as they are; other bytes are %XX, uppercase hex */
    assert_id("visits-0", "visits-0." VOL);
    assert_id("web.visits-12", "web.visits-12." VOL);
    assert_id("caf\xc3\xa9", "caf%C3%A9." VOL);
    assert_id(".hidden", "%2Ehidden." VOL); /* never a dot file */
    assert_id("Pod_A", "%50od%5F%41." VOL);
    assert_id("a b/c%", "a%20b%2Fc%25." VOL);
    /* what cannot name a slot */
    char id[SLOT_ID_MAX + 1], err[200];
    assert_int_equal(slot_id_make("", VOL, id), -1);
    assert_int_equal(slot_id_make("a\x01"
                                  "b",
                                  VOL, id),
                     -1);
    assert_int_equal(slot_id_make("bad\xff", VOL, id), -1);
    assert_int_equal(slot_id_make("pod", "0123456789ABCDEF", id), -1);
    assert_int_equal(slot_id_make("pod", "0123", id), -1);
    /* up to 220 escaped bytes the name is the id's first part; longer names (a 253-byte
     * DNS name, a name with many escapes) are cut at a character and get a hash */
    char longest[SLOT_POD_MAX + 1], pod[SLOT_POD_MAX + 1];
    memset(longest, 'a', sizeof(longest));
    longest[SLOT_POD_ID_MAX] = '\0';
    assert_int_equal(slot_id_make(longest, VOL, id), 0);
    assert_int_equal(strlen(id), SLOT_ID_MAX);
    assert_int_equal(strchr(id, '~'), NULL);
    longest[SLOT_POD_ID_MAX] = 'a';
    longest[SLOT_POD_MAX] = '\0';
    assert_int_equal(slot_pod_check(longest, strlen(longest), err, sizeof(err)), 0);
    assert_int_equal(slot_id_make(longest, VOL, id), 0);
    assert_true(strlen(id) <= SLOT_ID_MAX);
    assert_int_equal(strlen(id), SLOT_HASHED_PREFIX_MAX + SLOT_HASH_LEN + 1 + SLOT_VOLUME_LEN);
    assert_int_equal(id[SLOT_HASHED_PREFIX_MAX], '~');
    assert_int_equal(slot_id_parse(id, strlen(id), pod, NULL, err, sizeof(err)), 0);
    assert_int_equal(strncmp(pod, longest, SLOT_HASHED_PREFIX_MAX), 0);
    assert_int_equal(pod[SLOT_HASHED_PREFIX_MAX], '~');
    char again[SLOT_ID_MAX + 1];
    longest[SLOT_POD_MAX - 1] = 'b'; /* another long name, another hash */
    assert_int_equal(slot_id_make(longest, VOL, again), 0);
    assert_string_not_equal(id, again);
    assert_int_equal(strncmp(id, again, SLOT_HASHED_PREFIX_MAX + 1), 0);
    /* a long name of 2-byte characters is cut between characters: the cut name stays UTF-8 */
    char wide[SLOT_POD_MAX + 1] = "";
    while (strlen(wide) + 2 <= SLOT_POD_MAX)
        strcat(wide, "\xc3\xa9");
    assert_int_equal(slot_id_make(wide, VOL, id), 0);
    assert_int_equal(slot_id_parse(id, strlen(id), pod, NULL, err, sizeof(err)), 0);
    assert_true(strlen(id) <= SLOT_ID_MAX);
    assert_int_equal(strlen(pod) % 2, 1); /* whole characters, then "~" and 16 digits */
    assert_bad_id("short~0123456789abcdef." VOL, "cut name is 5 bytes");
    /* one form per name */
    assert_bad_id("visits%2D0." VOL, "escapes a byte that needs none");
    assert_bad_id("caf%c3%a9." VOL, "bad escape");
    assert_bad_id("Pod." VOL, "must be escaped");
    assert_bad_id(".pod." VOL, "must be escaped");
    assert_bad_id("pod."
                  "0123456789ABCDEF",
                  "POD.VOLUMEID");
    assert_bad_id("pod-0123456789abcdef", "POD.VOLUMEID");
    assert_bad_id("." VOL, "POD.VOLUMEID");
    assert_bad_id("pod%0." VOL, "bad escape");
    assert_bad_id("a%00b." VOL, "control character");
    assert_bad_id("bad%FF." VOL, "not UTF-8");
    assert_bad_id("bad%ED%A0%80." VOL, "not UTF-8"); /* a surrogate */
    char toolong[SLOT_ID_MAX + 2];
    memset(toolong, 'a', sizeof(toolong));
    memcpy(toolong + SLOT_ID_MAX + 1 - SLOT_VOLUME_LEN - 1, "." VOL, SLOT_VOLUME_LEN + 1);
    toolong[SLOT_ID_MAX + 1] = '\0';
    assert_bad_id(toolong, "at most 237 bytes");
}

/* ---- the merge, as a property ------------------------------------------------------------ */

#define POOL 24
static char pool[POOL][SLOT_ID_MAX + 1];
static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible from the seed on every platform */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static uint64_t rnd_value(void)
{
    switch (rnd() % 8) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    case 2:
        return UINT64_MAX - rnd() % 3;
    case 3:
        return rnd();
    default:
        return rnd() % 100;
    }
}

static void random_map(struct slotmap *m)
{
    slotmap_init(m);
    size_t n = rnd() % 16;
    for (size_t i = 0; i < n; i++)
        assert_true(slotmap_raise(m, pool[rnd() % POOL], rnd_value()) >= 0);
}

static void merged(struct slotmap *out, const struct slotmap *a, const struct slotmap *b)
{
    slotmap_init(out);
    assert_int_equal(slotmap_copy(out, a), 0);
    assert_int_equal(slotmap_merge(out, b), 0);
}

/* Every slot of a is in m with at least its value. */
static int covers(const struct slotmap *m, const struct slotmap *a)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct slot *s = slotmap_find(m, a->s[i].id);
        if (s == NULL || s->value < a->s[i].value)
            return 0;
    }
    return 1;
}

/* Sorted by id and every id once. */
static int well_formed(const struct slotmap *m)
{
    for (size_t i = 1; i < m->n; i++)
        if (strcmp(m->s[i - 1].id, m->s[i].id) >= 0)
            return 0;
    return 1;
}

static void test_merge_properties(void **state)
{
    (void)state;
    const char *env = getenv("VISITS_PROPERTY_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed != 0 ? seed : 1;
    print_message("merge properties: VISITS_PROPERTY_SEED=%" PRIu64 "\n", seed);
    for (int i = 0; i < POOL; i++) {
        char pod[32];
        snprintf(pod, sizeof(pod), "pod-%d", i % 8);
        char vol[SLOT_VOLUME_LEN + 1];
        snprintf(vol, sizeof(vol), "%016x", (unsigned)(i * 7919));
        assert_int_equal(slot_id_make(pod, vol, pool[i]), 0);
    }
    for (int round = 0; round < 3000; round++) {
        struct slotmap a, b, c, ab, ba, ab_c, bc, a_bc, aa, ab_b, t;
        random_map(&a);
        random_map(&b);
        random_map(&c);
        merged(&ab, &a, &b);
        merged(&ba, &b, &a);
        merged(&ab_c, &ab, &c);
        merged(&bc, &b, &c);
        merged(&a_bc, &a, &bc);
        merged(&aa, &a, &a);
        merged(&ab_b, &ab, &b);
        if (!slotmap_equal(&ab, &ba))
            fail_msg("not commutative (seed %" PRIu64 ", round %d)", seed, round);
        if (!slotmap_equal(&ab_c, &a_bc))
            fail_msg("not associative (seed %" PRIu64 ", round %d)", seed, round);
        if (!slotmap_equal(&aa, &a) || !slotmap_equal(&ab_b, &ab))
            fail_msg("not idempotent (seed %" PRIu64 ", round %d)", seed, round);
        if (!covers(&ab, &a) || !covers(&ab, &b) || !well_formed(&ab))
            fail_msg("a merge lowered or lost a slot (seed %" PRIu64 ", round %d)", seed, round);
        /* nothing that was in neither input, and each slot exactly the larger value */
        for (size_t k = 0; k < ab.n; k++) {
            const struct slot *x = slotmap_find(&a, ab.s[k].id), *y = slotmap_find(&b, ab.s[k].id);
            uint64_t want = x == NULL             ? y->value
                            : y == NULL           ? x->value
                            : x->value > y->value ? x->value
                                                  : y->value;
            assert_true(x != NULL || y != NULL);
            assert_int_equal(ab.s[k].value, want);
        }
        /* monotone totals, saturating at UINT64_MAX */
        int sat_a, sat_ab;
        uint64_t ta = slotmap_total(&a, &sat_a), tab = slotmap_total(&ab, &sat_ab);
        assert_true(tab >= ta);
        assert_true(!sat_a || sat_ab);
        /* folding the three in another order (the order the peers answer in) */
        merged(&t, &c, &a);
        assert_int_equal(slotmap_merge(&t, &b), 0);
        if (!slotmap_equal(&t, &ab_c))
            fail_msg("the order of the answers matters (seed %" PRIu64 ", round %d)", seed, round);
        /* raise never lowers */
        if (ab.n != 0) {
            const char *id = ab.s[0].id;
            uint64_t before = ab.s[0].value;
            assert_int_equal(slotmap_raise(&ab, id, before / 2), 0);
            assert_int_equal(slotmap_find(&ab, id)->value, before);
        }
        struct slotmap *all[] = {&a, &b, &c, &ab, &ba, &ab_c, &bc, &a_bc, &aa, &ab_b, &t};
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            slotmap_free(all[k]);
    }
}

/* A merge that would exceed SLOTS_MAX keeps every slot it had and adds what fits. */
static void test_merge_full(void **state)
{
    (void)state;
    struct slotmap big, other;
    slotmap_init(&big);
    slotmap_init(&other);
    char id[SLOT_ID_MAX + 1], pod[32];
    for (int i = 0; i < SLOTS_MAX; i++) {
        snprintf(pod, sizeof(pod), "p%05d", 2 * i);
        assert_int_equal(slot_id_make(pod, VOL, id), 0);
        assert_int_equal(slotmap_raise(&big, id, 1), 1);
    }
    snprintf(pod, sizeof(pod), "p%05d", 1);
    assert_int_equal(slot_id_make(pod, VOL, id), 0);
    assert_int_equal(slotmap_raise(&big, id, 1), -ENOSPC);
    assert_int_equal(slotmap_raise(&other, id, 5), 1);
    snprintf(pod, sizeof(pod), "p%05d", 0);
    assert_int_equal(slot_id_make(pod, VOL, id), 0);
    assert_int_equal(slotmap_raise(&other, id, 9), 1);
    assert_int_equal(slotmap_merge(&big, &other), -ENOSPC);
    assert_int_equal(big.n, SLOTS_MAX);
    assert_int_equal(slotmap_find(&big, id)->value, 9); /* a slot it had is still raised */
    slotmap_free(&big);
    slotmap_free(&other);
}

/* ---- GET /slots answers ------------------------------------------------------------------ */

static int parse(const char *body, struct slots_answer *a, char *err, size_t errsize)
{
    return slotwire_parse(body, strlen(body), a, err, errsize);
}

static void assert_refused(const char *body, const char *mention)
{
    struct slots_answer a;
    char err[300] = "";
    if (slotwire_parse(body, strlen(body), &a, err, sizeof(err)) != -1)
        fail_msg("accepted: %.200s", body);
    assert_int_equal(a.slots.n, 0); /* all or nothing */
    if (strstr(err, mention) == NULL)
        fail_msg("refused %.120s with \"%s\", not mentioning \"%s\"", body, err, mention);
    slotwire_free(&a);
}

static void test_wire_round_trip(void **state)
{
    (void)state;
    struct slotmap reps;
    struct strbuf sb;
    struct slots_answer a;
    char err[300];
    slotmap_init(&reps);
    strbuf_init(&sb);
    assert_int_equal(slotmap_raise(&reps, "visits-1." VOL, 205), 1);
    assert_int_equal(slotmap_raise(&reps, "caf%C3%A9.fedcba9876543210", UINT64_MAX), 1);
    slotwire_render(&sb, "visits-0", "visits-0.aaaaaaaaaaaaaaaa", 103, &reps);
    assert_string_equal(sb.data,
                        "{\"pod\":\"visits-0\",\"slot\":\"visits-0.aaaaaaaaaaaaaaaa\",\"slots\":["
                        "{\"slot\":\"visits-0.aaaaaaaaaaaaaaaa\",\"visits\":103},"
                        "{\"slot\":\"caf%C3%A9.fedcba9876543210\",\"visits\":"
                        "18446744073709551615},"
                        "{\"slot\":\"visits-1.0123456789abcdef\",\"visits\":205}]}\n");
    assert_int_equal(parse(sb.data, &a, err, sizeof(err)), 0);
    assert_string_equal(a.pod, "visits-0");
    assert_string_equal(a.slot, "visits-0.aaaaaaaaaaaaaaaa");
    assert_int_equal(a.slots.n, 3);
    assert_int_equal(slotmap_find(&a.slots, "caf%C3%A9.fedcba9876543210")->value, UINT64_MAX);
    assert_int_equal(slotmap_find(&a.slots, "visits-1." VOL)->value, 205);
    slotwire_free(&a);
    /* members it does not know, white space, a pod name from the id, not from "pod" */
    assert_int_equal(
        parse(" {\"version\":[1,{\"x\":null}],\"pod\":\"liar\",\"slot\":\"caf%C3%A9." VOL
              "\",\"slots\":[],\"extra\":99999999999999999999.5}\r\n",
              &a, err, sizeof(err)),
        0);
    assert_string_equal(a.pod, "caf\xc3\xa9");
    assert_int_equal(a.slots.n, 0);
    slotwire_free(&a);
    strbuf_free(&sb);
    slotmap_free(&reps);
}

static void test_wire_uint64_range(void **state)
{
    (void)state;
    struct slots_answer a;
    char err[300];
    assert_int_equal(parse("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL
                           "\",\"visits\":18446744073709551615}]}",
                           &a, err, sizeof(err)),
                     0);
    assert_true(a.slots.s[0].value == UINT64_MAX);
    slotwire_free(&a);
    assert_int_equal(parse("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL
                           "\",\"visits\":9223372036854775808}]}",
                           &a, err, sizeof(err)),
                     0);
    assert_true(a.slots.s[0].value == 9223372036854775808ull);
    slotwire_free(&a);
    /* json-c alone would read these as 18446744073709551615 */
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL
                   "\",\"visits\":18446744073709551616}]}",
                   "number out of range at byte");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL
                   "\",\"visits\":99999999999999999999999}]}",
                   "number out of range");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[],\"x\":-18446744073709551616}",
                   "number out of range");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL "\",\"visits\":-1}]}",
                   "\"visits\" is negative (-1)");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL "\",\"visits\":1.5}]}",
                   "\"visits\" is not an integer");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL "\",\"visits\":1e3}]}",
                   "\"visits\" is not an integer");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL
                   "\",\"visits\":\"12\"}]}",
                   "\"visits\" is not an integer");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL "\",\"visits\":012}]}",
                   "not JSON");
    /* digits inside strings are text */
    assert_int_equal(parse("{\"pod\":\"99999999999999999999999\",\"slot\":\"p." VOL
                           "\",\"slots\":[]}",
                           &a, err, sizeof(err)),
                     0);
    slotwire_free(&a);
}

static void test_wire_hostile(void **state)
{
    (void)state;
    assert_refused("", "not JSON: empty");
    assert_refused("hello", "not JSON");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[]", "not JSON: cut short");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[]} trailing",
                   "not JSON: unexpected character at byte 41");
    assert_refused("[]", "not a JSON object");
    assert_refused("{\"slots\":[]}", "no \"slot\" member");
    assert_refused("{\"slot\":7,\"slots\":[]}", "\"slot\" is not a string");
    assert_refused("{\"slot\":\"nope\",\"slots\":[]}", "\"slot\": a slot id is POD.VOLUMEID");
    assert_refused("{\"slot\":\"p\\u0000." VOL "\",\"slots\":[]}", "a NUL byte");
    assert_refused("{\"slot\":\"p." VOL "\"}", "no \"slots\" member");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":{}}", "\"slots\" is not an array");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[7]}", "slots[0]: not an object");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"visits\":1}]}",
                   "slots[0]: no \"slot\" member");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL "\"}]}",
                   "slots[0]: no \"visits\" member");
    assert_refused("{\"slot\":\"p." VOL
                   "\",\"slots\":[{\"slot\":\"../../etc/passwd\",\"visits\":1}]}",
                   "slots[0]: \"slot\": a slot id is POD.VOLUMEID");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"a/b." VOL "\",\"visits\":1}]}",
                   "must be escaped");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[{\"slot\":\"p." VOL "\",\"visits\":1},"
                   "{\"slot\":\"q." VOL "\",\"visits\":2},{\"slot\":\"p." VOL "\",\"visits\":3}]}",
                   "slot p." VOL " given twice");
    assert_refused("{\"slot\":\"p." VOL "\",\"slots\":[],\"x\":[[[[[1]]]]]}", "nested deeper");
    /* many slots: 4096 are fine, 4097 are not, and the good ones are not kept either */
    struct strbuf sb;
    strbuf_init(&sb);
    for (int n = SLOTS_MAX; n <= SLOTS_MAX + 1; n++) {
        sb.len = 0;
        strbuf_puts(&sb, "{\"slot\":\"p." VOL "\",\"slots\":[");
        for (int i = 0; i < n; i++)
            strbuf_printf(&sb, "%s{\"slot\":\"p%d." VOL "\",\"visits\":%d}", i ? "," : "", i, i);
        strbuf_puts(&sb, "]}");
        if (n == SLOTS_MAX) {
            struct slots_answer a;
            char err[300];
            assert_int_equal(parse(sb.data, &a, err, sizeof(err)), 0);
            assert_int_equal(a.slots.n, SLOTS_MAX);
            slotwire_free(&a);
        } else {
            assert_refused(sb.data, "\"slots\" has 4097 entries, at most 4096");
        }
    }
    /* a body over the limit is refused before it is read */
    sb.len = 0;
    strbuf_puts(&sb, "{\"slot\":\"p." VOL "\",\"slots\":[],\"pad\":\"");
    while (sb.len < SLOTS_BODY_MAX)
        strbuf_puts(&sb, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    strbuf_puts(&sb, "\"}");
    assert_refused(sb.data, "at most 1048576");
    strbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_ids),          cmocka_unit_test(test_merge_properties),
        cmocka_unit_test(test_merge_full),        cmocka_unit_test(test_wire_round_trip),
        cmocka_unit_test(test_wire_uint64_range), cmocka_unit_test(test_wire_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

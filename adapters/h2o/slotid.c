/* slotid.c: slot ids, "POD.VOLUMEID" with the pod's name escaped (see slotid.h). */
#include "slotid.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char hexdigits[] = "0123456789ABCDEF";

/* A byte the escaped form keeps as it is (a '.' only after the first place). */
static int plain(unsigned char c, size_t at)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (c == '.' && at > 0);
}

/* Length of the next UTF-8 character at s (at most len bytes), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_char(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    unsigned min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Bytes of pod's escaped form. */
static size_t escaped_len(const char *pod, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += plain((unsigned char)pod[i], i) ? 1 : 3;
    return n;
}

int slot_pod_check(const char *pod, size_t len, char *err, size_t errsize)
{
    if (len == 0 || len > SLOT_POD_MAX) {
        snprintf(err, errsize, "a pod name has 1..%d bytes, this one %zu", SLOT_POD_MAX, len);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)pod;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            snprintf(err, errsize, "control character 0x%02x at byte %zu of the pod name", p[i], i);
            return -1;
        }
        size_t n = utf8_char(p + i, len - i);
        if (n == 0) {
            snprintf(err, errsize, "the pod name is not UTF-8 (byte %zu)", i);
            return -1;
        }
        i += n;
    }
    return 0;
}

int slot_volume_valid(const char *s, size_t len)
{
    if (len != SLOT_VOLUME_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* FNV-1a, 64 bits: names a long pod name's slot (not a secret, only a distinction). */
static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

int slot_id_make(const char *pod, const char *volume, char out[SLOT_ID_MAX + 1])
{
    char why[160];
    size_t len = strlen(pod);
    if (slot_pod_check(pod, len, why, sizeof(why)) != 0 ||
        !slot_volume_valid(volume, strlen(volume)))
        return -1;
    int hashed = escaped_len(pod, len) > SLOT_POD_ID_MAX;
    size_t budget = hashed ? SLOT_HASHED_PREFIX_MAX : SLOT_POD_ID_MAX;
    char *o = out;
    for (size_t i = 0; i < len;) {
        /* whole characters only: a cut prefix stays UTF-8 */
        size_t n = utf8_char((const unsigned char *)pod + i, len - i), width = 0;
        for (size_t k = i; k < i + n; k++)
            width += plain((unsigned char)pod[k], k) ? 1 : 3;
        if ((size_t)(o - out) + width > budget)
            break;
        for (size_t k = i; k < i + n; k++) {
            unsigned char c = (unsigned char)pod[k];
            if (plain(c, k)) {
                *o++ = (char)c;
            } else {
                *o++ = '%';
                *o++ = hexdigits[c >> 4];
                *o++ = hexdigits[c & 15];
            }
        }
        i += n;
    }
    if (hashed) {
        uint64_t h = fnv1a(pod, len);
        *o++ = '~';
        for (int k = 15; k >= 0; k--)
            *o++ = "0123456789abcdef"[(h >> (4 * k)) & 15];
    }
    *o++ = '.';
    memcpy(o, volume, SLOT_VOLUME_LEN);
    o[SLOT_VOLUME_LEN] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lowercase hex is not the canonical form */
}

int slot_id_parse(const char *id, size_t len, char *pod, char *volume, char *err, size_t errsize)
{
    char name[SLOT_POD_MAX + 1];
    size_t n = 0;
    if (len > SLOT_ID_MAX) {
        snprintf(err, errsize, "a slot id has at most %d bytes, this one %zu", SLOT_ID_MAX, len);
        return -1;
    }
    if (len < SLOT_VOLUME_LEN + 2 || id[len - SLOT_VOLUME_LEN - 1] != '.' ||
        !slot_volume_valid(id + len - SLOT_VOLUME_LEN, SLOT_VOLUME_LEN)) {
        snprintf(err, errsize, "a slot id is POD.VOLUMEID (16 lowercase hex digits)");
        return -1;
    }
    size_t plen = len - SLOT_VOLUME_LEN - 1;
    const char *hash = NULL; /* a long name's form: PREFIX~HASH16 */
    if (plen > SLOT_HASH_LEN && id[plen - SLOT_HASH_LEN] == '~' &&
        slot_volume_valid(id + plen - SLOT_HASH_LEN + 1, SLOT_HASH_LEN - 1)) {
        hash = id + plen - SLOT_HASH_LEN;
        plen -= SLOT_HASH_LEN;
        if (plen + 12 <= SLOT_HASHED_PREFIX_MAX || plen > SLOT_HASHED_PREFIX_MAX) {
            snprintf(err, errsize, "a slot id's cut name is %zu bytes, %d to %d when cut", plen,
                     SLOT_HASHED_PREFIX_MAX - 11, SLOT_HASHED_PREFIX_MAX);
            return -1;
        }
    }
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c == '%') {
            int hi = i + 2 < plen ? hexval(id[i + 1]) : -1;
            int lo = i + 2 < plen ? hexval(id[i + 2]) : -1;
            if (i + 2 >= plen || hi < 0 || lo < 0) {
                snprintf(err, errsize, "bad escape at byte %zu of the slot id (%%XX, uppercase)",
                         i);
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            if (plain(c, n)) {
                snprintf(err, errsize, "byte %zu of the slot id escapes a byte that needs none", i);
                return -1;
            }
            i += 2;
        } else if (!plain(c, n)) {
            snprintf(err, errsize, "byte 0x%02x at %zu of the slot id must be escaped", c, i);
            return -1;
        }
        name[n++] = (char)c; /* n <= plen <= SLOT_POD_ID_MAX < SLOT_POD_MAX */
    }
    char why[160];
    if (slot_pod_check(name, n, why, sizeof(why)) != 0) {
        snprintf(err, errsize, "slot id: %s", why);
        return -1;
    }
    if (hash != NULL) { /* shown as the cut name and its hash */
        memcpy(name + n, hash, SLOT_HASH_LEN);
        n += SLOT_HASH_LEN;
    }
    if (pod != NULL) {
        memcpy(pod, name, n);
        pod[n] = '\0';
    }
    if (volume != NULL) {
        memcpy(volume, id + plen + 1, SLOT_VOLUME_LEN);
        volume[SLOT_VOLUME_LEN] = '\0';
    }
    return 0;
}

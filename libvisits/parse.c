/* parse.c: the counter file format, decimal digits and one optional "\n". */
#include "visits_int.h"

int visits_parse(const char *buf, size_t len, uint64_t *value_out)
{
    uint64_t value = 0;
    size_t i;

    if (buf == NULL || value_out == NULL)
        return VISITS_EINVAL;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    /* 20 digits hold UINT64_MAX; "0" alone is the only number that may start with 0. */
    if (len == 0 || len > 20 || (buf[0] == '0' && len > 1))
        return VISITS_ECORRUPT;
    for (i = 0; i < len; i++) {
        unsigned digit = (unsigned char)buf[i] - (unsigned)'0';
        if (digit > 9)
            return VISITS_ECORRUPT;
        if (value > (UINT64_MAX - digit) / 10)
            return VISITS_ECORRUPT;
        value = value * 10 + digit;
    }
    *value_out = value;
    return 0;
}

size_t visits__format(uint64_t value, char buf[VISITS__FORMAT_MAX])
{
    char digits[20];
    size_t n = 0, len = 0;

    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0)
        buf[len++] = digits[--n];
    buf[len++] = '\n';
    buf[len] = '\0';
    return len;
}

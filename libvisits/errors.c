/* errors.c: error texts and version information. */
#include "visits_int.h"

#include <errno.h>
#include <string.h>

const char *visits_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define VISITS_XX_CASE(name, value, msg)                                                           \
    case VISITS_##name:                                                                            \
        return msg;
        VISITS_ERRNO_MAP(VISITS_XX_CASE)
#undef VISITS_XX_CASE
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        /* strerrordesc_np() returns a static string and is thread-safe, unlike strerror(). */
        const char *msg = strerrordesc_np(-err);
        if (msg != NULL)
            return msg;
    }
    return "unknown error";
}

unsigned visits_version(void)
{
    return VISITS_VERSION_NUMBER;
}

const char *visits_version_string(void)
{
    return VISITS_VERSION_STRING;
}

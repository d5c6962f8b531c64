/* errors.c: error names and texts, and version information. */
#include "visits_int.h"

#include <errno.h>
#include <string.h>

/*
 * The system errors a file library can meet, with a stable name and a description of its
 * own, so that visits_strerror() is thread-safe and portable (strerror() need not be
 * either). Codes a system lacks are simply not listed there.
 */
#define ERRNO_TABLE(XX)                                                                            \
    XX(EPERM, "Operation not permitted")                                                           \
    XX(ENOENT, "No such file or directory")                                                        \
    XX(ESRCH, "No such process")                                                                   \
    XX(EINTR, "Interrupted system call")                                                           \
    XX(EIO, "Input/output error")                                                                  \
    XX(ENXIO, "No such device or address")                                                         \
    XX(E2BIG, "Argument list too long")                                                            \
    XX(EBADF, "Bad file descriptor")                                                               \
    XX(EAGAIN, "Resource temporarily unavailable")                                                 \
    XX(ENOMEM, "Cannot allocate memory")                                                           \
    XX(EACCES, "Permission denied")                                                                \
    XX(EFAULT, "Bad address")                                                                      \
    XX(EBUSY, "Device or resource busy")                                                           \
    XX(EEXIST, "File exists")                                                                      \
    XX(EXDEV, "Invalid cross-device link")                                                         \
    XX(ENODEV, "No such device")                                                                   \
    XX(ENOTDIR, "Not a directory")                                                                 \
    XX(EISDIR, "Is a directory")                                                                   \
    XX(EINVAL, "Invalid argument")                                                                 \
    XX(ENFILE, "Too many open files in system")                                                    \
    XX(EMFILE, "Too many open files")                                                              \
    XX(ETXTBSY, "Text file busy")                                                                  \
    XX(EFBIG, "File too large")                                                                    \
    XX(ENOSPC, "No space left on device")                                                          \
    XX(ESPIPE, "Illegal seek")                                                                     \
    XX(EROFS, "Read-only file system")                                                             \
    XX(EMLINK, "Too many links")                                                                   \
    XX(EPIPE, "Broken pipe")                                                                       \
    XX(ERANGE, "Numerical result out of range")                                                    \
    XX(EDEADLK, "Resource deadlock avoided")                                                       \
    XX(ENAMETOOLONG, "File name too long")                                                         \
    XX(ENOLCK, "No locks available")                                                               \
    XX(ENOSYS, "Function not implemented")                                                         \
    XX(ENOTEMPTY, "Directory not empty")                                                           \
    XX(ELOOP, "Too many levels of symbolic links")                                                 \
    XX(ENODATA, "No data available")                                                               \
    XX(ETIME, "Timer expired")                                                                     \
    XX(ENOLINK, "Link has been severed")                                                           \
    XX(EOVERFLOW, "Value too large for defined data type")                                         \
    XX(EBADFD, "File descriptor in bad state")                                                     \
    XX(EILSEQ, "Invalid or incomplete multibyte or wide character")                                \
    XX(EUSERS, "Too many users")                                                                   \
    XX(ENOTSOCK, "Socket operation on non-socket")                                                 \
    XX(EOPNOTSUPP, "Operation not supported")                                                      \
    XX(EADDRINUSE, "Address already in use")                                                       \
    XX(EADDRNOTAVAIL, "Cannot assign requested address")                                           \
    XX(ENETDOWN, "Network is down")                                                                \
    XX(ENETUNREACH, "Network is unreachable")                                                      \
    XX(ECONNABORTED, "Software caused connection abort")                                           \
    XX(ECONNRESET, "Connection reset by peer")                                                     \
    XX(ENOBUFS, "No buffer space available")                                                       \
    XX(ENOTCONN, "Transport endpoint is not connected")                                            \
    XX(ETIMEDOUT, "Connection timed out")                                                          \
    XX(ECONNREFUSED, "Connection refused")                                                         \
    XX(EHOSTUNREACH, "No route to host")                                                           \
    XX(EALREADY, "Operation already in progress")                                                  \
    XX(EINPROGRESS, "Operation now in progress")                                                   \
    XX(ESTALE, "Stale file handle")                                                                \
    XX(EUCLEAN, "Structure needs cleaning")                                                        \
    XX(EREMOTEIO, "Remote I/O error")                                                              \
    XX(EDQUOT, "Disk quota exceeded")                                                              \
    XX(ECANCELED, "Operation canceled")                                                            \
    XX(EOWNERDEAD, "Owner died")                                                                   \
    XX(ENOTRECOVERABLE, "State not recoverable")

struct errno_entry {
    int code;
    const char *name;
    const char *text;
};

static const struct errno_entry errno_entries[] = {
#define ERRNO_ENTRY(name, text) {name, #name, text},
    ERRNO_TABLE(ERRNO_ENTRY)
#undef ERRNO_ENTRY
};

/* The entry of -err, or NULL. Aliases (EWOULDBLOCK == EAGAIN, ENOTSUP == EOPNOTSUPP,
 * EDEADLOCK == EDEADLK) find their first spelling. */
static const struct errno_entry *errno_entry(int err)
{
    size_t i;

    if (err >= 0 || err < -4095)
        return NULL;
    for (i = 0; i < sizeof(errno_entries) / sizeof(errno_entries[0]); i++)
        if (errno_entries[i].code == -err)
            return &errno_entries[i];
    return NULL;
}

const char *visits_strerror(int err)
{
    const struct errno_entry *e;

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
    if ((e = errno_entry(err)) != NULL)
        return e->text;
    return err < 0 && err >= -4095 ? "system error" : "unknown error";
}

const char *visits_err_name(int err)
{
    const struct errno_entry *e;

    switch (err) {
    case 0:
        return "OK";
#define VISITS_XX_NAME(name, value, msg)                                                           \
    case VISITS_##name:                                                                            \
        return #name;
        VISITS_ERRNO_MAP(VISITS_XX_NAME)
#undef VISITS_XX_NAME
    default:
        break;
    }
    if ((e = errno_entry(err)) != NULL)
        return e->name;
    return "EUNKNOWN";
}

unsigned visits_version(void)
{
    return VISITS_VERSION_NUMBER;
}

const char *visits_version_string(void)
{
    return VISITS_VERSION_STRING;
}

/*
 * visitsctl: read, increment, set and check a visits counter file from the command line.
 *
 * A thin layer over libvisits: every read and write of the counter is a library call. The
 * only file access of its own is a read of a corrupt file's first bytes, to show them in
 * the error message.
 */
#define _POSIX_C_SOURCE 200809L

#include <visits.h>

#include "slotid.h" /* visits-server's slot ids (adapters/h2o/slotid.c) */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit statuses. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "Usage: visitsctl get FILE\n"
    "       visitsctl incr FILE [N]\n"
    "       visitsctl set FILE N\n"
    "       visitsctl check FILE\n"
    "       visitsctl slots DIR\n"
    "       visitsctl --help | --version\n"
    "\n"
    "Read and change a visits counter file: a decimal number and a newline.\n"
    "\n"
    "Commands:\n"
    "  get FILE       Print the value. A missing file prints 0. Takes no lock and writes\n"
    "                 nothing, so it works on read-only files and directories.\n"
    "  incr FILE [N]  Add N (default 1) durably and print the new value. N may be 0: the\n"
    "                 file is then rewritten with its value (created as 0 if missing).\n"
    "  set FILE N     Replace the file with N, whatever it holds, and report what was\n"
    "                 replaced. The only command that rewrites a corrupt file.\n"
    "  check FILE     Validate the file and print \"FILE: ok, VALUE\".\n"
    "  slots DIR      Show the slots of visits-server's data directory DIR: its volume id,\n"
    "                 its own slot (DIR/visits) and every replica of another pod's slot\n"
    "                 (DIR/slots/POD.VOLUMEID), one per line as KIND SLOT VALUE POD, then\n"
    "                 the total. Reads only, like get.\n"
    "\n"
    "N is a decimal number from 0 to 18446744073709551615: digits only, no sign, no\n"
    "leading zeros. Use -- before a FILE that starts with '-'.\n"
    "\n"
    "Exit status: 0 success; 1 the command failed (check: the file is corrupt;\n"
    "slots: a file is corrupt or unreadable); 2 usage error (check: the file could not be\n"
    "read).\n";

struct command {
    const char *name;
    const char *synopsis; /* arguments after the name, for usage errors */
    int min_args, max_args;
    int (*run)(const struct command *cmd, char **args, int nargs);
};

/* Writes s with C escapes so that any bytes print as one line of ASCII. */
static void put_escaped(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\\':
        case '"':
            fputc('\\', f);
            fputc(ch, f);
            break;
        default:
            if (ch >= 0x20 && ch < 0x7f)
                fputc(ch, f);
            else
                fprintf(f, "\\x%02x", ch);
        }
    }
}

/* Writes path as one shell word, quoted only when it needs to be. */
static void put_shell_word(FILE *f, const char *path)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_./:@%+=,-";

    if (path[0] == '-')
        fputs("-- ", f);
    if (strspn(path, safe) == strlen(path)) {
        fputs(path, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '\'')
            fputs("'\\''", f);
        else
            fputc(*p, f);
    }
    fputc('\'', f);
}

static int usage_error(const struct command *cmd, const char *what, const char *arg)
{
    fputs("visitsctl: ", stderr);
    if (cmd != NULL)
        fprintf(stderr, "%s: ", cmd->name);
    fputs(what, stderr);
    if (arg != NULL) {
        fputs(" \"", stderr);
        put_escaped(stderr, arg, strlen(arg));
        fputc('"', stderr);
    }
    if (cmd != NULL)
        fprintf(stderr, " (usage: visitsctl %s %s)\n", cmd->name, cmd->synopsis);
    else
        fputs(" (try 'visitsctl --help')\n", stderr);
    return EXIT_USAGE;
}

/*
 * Parses N: decimal digits, no sign, no leading zeros, at most UINT64_MAX. On error
 * prints the reason and returns EXIT_USAGE.
 */
static int parse_n(const struct command *cmd, const char *s, uint64_t *out)
{
    const char *why = NULL;
    uint64_t v = 0;

    if (*s == '\0')
        why = "is empty";
    else if (*s == '-' || *s == '+')
        why = "has a sign";
    else if (strspn(s, "0123456789") != strlen(s))
        why = "is not a decimal number";
    else if (s[0] == '0' && s[1] != '\0')
        why = "has a leading zero";
    for (const char *p = s; why == NULL && *p != '\0'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            why = "is larger than 18446744073709551615";
        v = v * 10 + d;
    }
    if (why != NULL) {
        fprintf(stderr, "visitsctl: %s: invalid N \"", cmd->name);
        put_escaped(stderr, s, strlen(s));
        fprintf(stderr, "\": %s (usage: visitsctl %s %s)\n", why, cmd->name, cmd->synopsis);
        return EXIT_USAGE;
    }
    *out = v;
    return EXIT_OK;
}

/*
 * Prints "visitsctl: PATH: reason". A corrupt file also gets its first bytes (read here,
 * never written) and the command that replaces it.
 */
static void report(const char *path, int err)
{
    fprintf(stderr, "visitsctl: %s: %s", path, visits_strerror(err));
    if (err == VISITS_ECORRUPT) {
        char buf[VISITS_MAX_FILE_SIZE + 1];
        ssize_t n = -1;
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            n = read(fd, buf, sizeof(buf));
            close(fd);
        }
        if (n >= 0) {
            fputs(": holds \"", stderr);
            put_escaped(stderr, buf, n > VISITS_MAX_FILE_SIZE ? VISITS_MAX_FILE_SIZE : (size_t)n);
            fputs(n > VISITS_MAX_FILE_SIZE ? "\"..." : "\"", stderr);
        }
        fputs("; replace it with: visitsctl set ", stderr);
        put_shell_word(stderr, path);
        fputs(" N", stderr);
    }
    fputc('\n', stderr);
}

static int cmd_get(const struct command *cmd, char **args, int nargs)
{
    uint64_t value;
    int err = visits_read_file(args[0], &value, NULL);

    (void)cmd;
    (void)nargs;
    if (err != 0) {
        report(args[0], err);
        return EXIT_FAIL;
    }
    printf("%" PRIu64 "\n", value);
    return EXIT_OK;
}

static int cmd_incr(const struct command *cmd, char **args, int nargs)
{
    visits_counter *c;
    uint64_t n = 1, value;
    int err, close_err;

    if (nargs == 2 && parse_n(cmd, args[1], &n) != EXIT_OK)
        return EXIT_USAGE;
    if ((err = visits_open(args[0], NULL, &c)) != 0) {
        report(args[0], err);
        return EXIT_FAIL;
    }
    err = visits_add(c, n, &value);
    if (err == 0)
        printf("%" PRIu64 "\n", value); /* durable already: visits_close() has no work */
    else
        report(args[0], err);
    if ((close_err = visits_close(c)) != 0 && err == 0)
        report(args[0], close_err);
    return err != 0 || close_err != 0 ? EXIT_FAIL : EXIT_OK;
}

static int cmd_set(const struct command *cmd, char **args, int nargs)
{
    visits_prev prev;
    uint64_t n;
    int err;

    (void)nargs;
    if (parse_n(cmd, args[1], &n) != EXIT_OK)
        return EXIT_USAGE;
    if ((err = visits_set_file(args[0], n, NULL, &prev)) != 0) {
        report(args[0], err);
        return EXIT_FAIL;
    }
    printf("visitsctl: %s: ", args[0]);
    if (prev.state == 0) {
        printf("replaced %" PRIu64, prev.value);
    } else if (prev.state == VISITS_ECORRUPT) {
        /* the library keeps up to VISITS_MAX_FILE_SIZE bytes: the file may have had more */
        fputs(prev.len < VISITS_MAX_FILE_SIZE ? "replaced corrupt contents \""
                                              : "replaced corrupt contents starting \"",
              stdout);
        put_escaped(stdout, prev.bytes, prev.len);
        fputc('"', stdout);
    } else {
        fputs("created", stdout);
    }
    printf(" with %" PRIu64 "\n", n);
    return EXIT_OK;
}

static int cmd_check(const struct command *cmd, char **args, int nargs)
{
    uint64_t value;
    int exists, err = visits_read_file(args[0], &value, &exists);

    (void)cmd;
    (void)nargs;
    if (err != 0) {
        report(args[0], err);
        return err == VISITS_ECORRUPT ? EXIT_FAIL : EXIT_USAGE;
    }
    if (exists)
        printf("%s: ok, %" PRIu64 "\n", args[0], value);
    else
        printf("%s: ok, 0 (no file yet)\n", args[0]);
    return EXIT_OK;
}

/* DIR/name (malloc'd; NULL when out of memory). */
static char *join(const char *dir, const char *name)
{
    size_t dlen = strlen(dir);
    char *p = malloc(dlen + strlen(name) + 2);
    if (p != NULL)
        sprintf(p, "%s%s%s", dir, dlen > 0 && dir[dlen - 1] == '/' ? "" : "/", name);
    return p;
}

/* The first line of DIR/name (without its newline) into buf: 1, 0 when the file does not
 * exist, -1 when it cannot be read (reported). */
static int read_line(const char *dir, const char *name, char *buf, size_t size)
{
    char *path = join(dir, name);
    int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) : -1;
    ssize_t n = -1;
    if (fd >= 0) {
        n = read(fd, buf, size - 1);
        close(fd);
    }
    if (n < 0 && errno == ENOENT) {
        free(path);
        return 0;
    }
    if (n < 0) {
        fprintf(stderr, "visitsctl: %s: %s\n", path != NULL ? path : name, strerror(errno));
        free(path);
        return -1;
    }
    free(path);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 1;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* "KIND SLOT VALUE POD": the pod's name last, as it may hold spaces. */
static void print_slot(const char *kind, const char *id, uint64_t value)
{
    char pod[SLOT_POD_MAX + 1], err[200];
    printf("%s %s %" PRIu64 " ", kind, id, value);
    if (slot_id_parse(id, strlen(id), pod, NULL, err, sizeof(err)) == 0)
        put_escaped(stdout, pod, strlen(pod));
    else
        fputs("?", stdout);
    fputc('\n', stdout);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_slots(const struct command *cmd, char **args, int nargs)
{
    const char *dir = args[0];
    char vol[64], own[SLOT_ID_MAX + 8], why[200];
    int status = EXIT_OK;
    uint64_t total = 0, value;
    (void)cmd;
    (void)nargs;
    DIR *probe = opendir(dir);
    if (probe == NULL) {
        fprintf(stderr, "visitsctl: %s: cannot read the data directory: %s\n", dir,
                strerror(errno));
        return EXIT_FAIL;
    }
    closedir(probe);
    int rv = read_line(dir, "volume-id", vol, sizeof(vol));
    int rs = read_line(dir, "slot-id", own, sizeof(own));
    if (rv < 0 || rs < 0)
        status = EXIT_FAIL;
    if (rv == 0)
        printf("volume-id none (visits-server makes it at its first start)\n");
    else if (rv > 0 && slot_volume_valid(vol, strlen(vol)))
        printf("volume-id %s\n", vol);
    else if (rv > 0) {
        fprintf(stderr,
                "visitsctl: %s/volume-id: corrupt volume id (expected 16 lowercase hex "
                "digits)\n",
                dir);
        status = EXIT_FAIL;
    }
    /* the own slot: DIR/visits, named by DIR/slot-id */
    char *path = join(dir, "visits");
    int err = path != NULL ? visits_read_file(path, &value, NULL) : -ENOMEM;
    if (err != 0) {
        report(path != NULL ? path : "visits", err);
        status = EXIT_FAIL;
    } else {
        if (rs > 0 && slot_id_parse(own, strlen(own), NULL, NULL, why, sizeof(why)) != 0) {
            fprintf(stderr, "visitsctl: %s/slot-id: corrupt slot id: %s\n", dir, why);
            status = EXIT_FAIL;
            rs = 0;
        }
        if (rs > 0)
            print_slot("own", own, value);
        else
            printf("own - %" PRIu64 " -\n", value);
        total = add_sat(total, value);
    }
    free(path);
    /* the replicas, in name order */
    char *slots = join(dir, "slots");
    DIR *d = slots != NULL ? opendir(slots) : NULL;
    if (d == NULL && errno != ENOENT) {
        fprintf(stderr, "visitsctl: %s: %s\n", slots != NULL ? slots : "slots", strerror(errno));
        status = EXIT_FAIL;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' ||
            slot_id_parse(e->d_name, strlen(e->d_name), NULL, NULL, why, sizeof(why)) != 0)
            continue; /* libvisits' own files, and what is no replica */
        char **grown = realloc(names, (n + 1) * sizeof(*names));
        if (grown == NULL || (grown[n] = strdup(e->d_name)) == NULL) {
            names = grown != NULL ? grown : names;
            fprintf(stderr, "visitsctl: out of memory\n");
            status = EXIT_FAIL;
            break;
        }
        names = grown;
        n++;
    }
    if (d != NULL)
        closedir(d);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char *rpath = join(slots, names[i]);
        err = rpath != NULL ? visits_read_file(rpath, &value, NULL) : -ENOMEM;
        if (err != 0) {
            report(rpath != NULL ? rpath : names[i], err);
            status = EXIT_FAIL;
        } else {
            print_slot("replica", names[i], value);
            total = add_sat(total, value);
        }
        free(rpath);
        free(names[i]);
    }
    free(names);
    free(slots);
    printf("total %" PRIu64 "\n", total);
    return status;
}

static const struct command commands[] = {
    {"get", "FILE", 1, 1, cmd_get},    {"incr", "FILE [N]", 1, 2, cmd_incr},
    {"set", "FILE N", 2, 2, cmd_set},  {"check", "FILE", 1, 1, cmd_check},
    {"slots", "DIR", 1, 1, cmd_slots},
};

/* Flushes stdout; a failed write there (a full disk, a closed pipe) fails the command. */
static int finish(int status, int io_status)
{
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "visitsctl: standard output: %s\n",
                errno != 0 ? strerror(errno) : "write error");
        return status != EXIT_OK ? status : io_status;
    }
    return status;
}

static int is_option(const char *arg)
{
    /* "-5" is a (bad) number, not an option: there are no numeric options */
    return arg[0] == '-' && arg[1] != '\0' && !(arg[1] >= '0' && arg[1] <= '9');
}

int main(int argc, char **argv)
{
    const struct command *cmd = NULL;
    char *args[2];
    int nargs = 0, options_done = 0;

    if (argc < 2)
        return usage_error(NULL, "missing command", NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--version") == 0) {
        if (argc > 2)
            return usage_error(NULL, "unexpected argument", argv[2]);
        if (strcmp(argv[1], "--version") == 0)
            printf("visitsctl %s\n", visits_version_string());
        else
            fputs(usage_text, stdout);
        return finish(EXIT_OK, EXIT_FAIL);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    }
    if (cmd == NULL)
        return usage_error(NULL, is_option(argv[1]) ? "unknown option" : "unknown command",
                           argv[1]);

    for (int i = 2; i < argc; i++) {
        if (!options_done && strcmp(argv[i], "--") == 0) {
            options_done = 1;
        } else if (!options_done &&
                   (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            fputs(usage_text, stdout);
            return finish(EXIT_OK, EXIT_FAIL);
        } else if (!options_done && is_option(argv[i])) {
            return usage_error(cmd, "unknown option", argv[i]);
        } else if (nargs == cmd->max_args) {
            return usage_error(cmd, "unexpected argument", argv[i]);
        } else {
            args[nargs++] = argv[i];
        }
    }
    if (nargs < 1)
        return usage_error(cmd, cmd->run == cmd_slots ? "missing DIR" : "missing FILE", NULL);
    if (nargs < cmd->min_args)
        return usage_error(cmd, "missing N", NULL);
    if (args[0][0] == '\0')
        return usage_error(cmd, cmd->run == cmd_slots ? "empty DIR" : "empty FILE", NULL);
    return finish(cmd->run(cmd, args, nargs), cmd->run == cmd_check ? EXIT_USAGE : EXIT_FAIL);
}

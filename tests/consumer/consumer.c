/*
 * consumer.c: a program outside the project, built against an installed libvisits.
 * Opens FILE, increments it by 1 and by 41, reads it back and closes it, then prints
 * "libvisits VERSION: incr A, add B, read C". Exit 1 with a message on any failure.
 */
#include <visits.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    visits_options opts;
    visits_counter *c = NULL;
    uint64_t after_incr = 0, after_add = 0, value = 0;
    const char *what;
    int err;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer FILE\n");
        return 2;
    }
    if (visits_version() != VISITS_VERSION_NUMBER ||
        strcmp(visits_version_string(), VISITS_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: built with libvisits %s (%u) but loaded %s (%u)\n",
                VISITS_VERSION_STRING, (unsigned)VISITS_VERSION_NUMBER, visits_version_string(),
                visits_version());
        return 1;
    }
    visits_options_init(&opts);
    if ((err = visits_open(argv[1], &opts, &c)) != 0) {
        what = "visits_open";
        goto Error;
    }
    if ((err = visits_incr(c, &after_incr)) != 0) {
        what = "visits_incr";
        goto Error;
    }
    if ((err = visits_add(c, 41, &after_add)) != 0) {
        what = "visits_add";
        goto Error;
    }
    if ((err = visits_read(c, &value)) != 0) {
        what = "visits_read";
        goto Error;
    }
    err = visits_close(c);
    c = NULL;
    if (err != 0) {
        what = "visits_close";
        goto Error;
    }
    printf("libvisits %s: incr %" PRIu64 ", add %" PRIu64 ", read %" PRIu64 "\n",
           visits_version_string(), after_incr, after_add, value);
    return fflush(stdout) == 0 ? 0 : 1;

Error:
    fprintf(stderr, "consumer: %s: %s: %s\n", what, argv[1], visits_strerror(err));
    visits_close(c);
    return 1;
}

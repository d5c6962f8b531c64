/*
 * volume.h: the id of a data directory's volume, DATA_DIR/volume-id: 16 lowercase hex
 * digits and a newline (`cat` shows it), made from getrandom() the first time a server
 * starts on the volume and never written again. A new volume (an empty directory) is a
 * new slot of the cluster's count; the same volume keeps its slot across restarts.
 */
#ifndef VISITS_VOLUME_H
#define VISITS_VOLUME_H

#include <stddef.h>

#define VOLUME_ID_FILE "volume-id"

/* Reads DATA_DIR/volume-id into id (17 bytes: 16 digits and a NUL), creating it when it
 * does not exist (temp file, fsync, link to the name, which never replaces a file that
 * another process made meanwhile, fsync of the directory). *created (nullable) says
 * whether it was made now. 0, or -1 with the file, what went wrong and the fix in err. */
int volume_id_load(const char *data_dir, char id[17], int *created, char *err, size_t errsize);

#endif /* VISITS_VOLUME_H */

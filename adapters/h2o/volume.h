/*
 * volume.h: the identity of a data directory's volume. DATA_DIR/volume-id holds 16
 * lowercase hex digits and a newline (`cat` shows it), made from getrandom() the first
 * time a server starts on the volume; DATA_DIR/slot-id then records the slot the volume
 * counts in, "POD.VOLUMEID" and a newline, POD being the pod that started on it first.
 * Neither is ever written again: a new volume (an empty directory) is a new slot of the
 * cluster's count, and a volume keeps its one slot for ever, across restarts and under
 * another pod name too (a container whose name is its random hostname, a renamed pod):
 * a second slot for the same volume would count its visits twice, once in the old slot,
 * which the other pods keep, once in the new.
 */
#ifndef VISITS_VOLUME_H
#define VISITS_VOLUME_H

#include "slotid.h"

#include <stddef.h>

#define VOLUME_ID_FILE "volume-id"
#define SLOT_ID_FILE "slot-id"

/* Reads DATA_DIR/volume-id into id (17 bytes: 16 digits and a NUL) and the volume's slot
 * into own, making both files when they do not exist, the slot with pod's name (temp file,
 * fsync, link to the name, which never replaces a file another process made meanwhile,
 * fsync of the directory). *created says whether the volume id was made now. 0, or -1 with
 * the file, what went wrong and the fix in err. */
int volume_load(const char *data_dir, const char *pod, char id[17], char own[SLOT_ID_MAX + 1],
                int *created, char *err, size_t errsize);

#endif /* VISITS_VOLUME_H */

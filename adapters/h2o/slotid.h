/*
 * slotid.h: the names of the cluster count's slots.
 *
 * A slot is one volume's count: the pod that counts into it and the volume's id (16
 * lowercase hex digits, DATA_DIR/volume-id). Its id, "POD.VOLUMEID", names it on the wire
 * (GET /slots) and is the file name of its replicas (DATA_DIR/slots/POD.VOLUMEID), so the
 * pod part is escaped: bytes other than a-z, 0-9, '-' and '.' (and a '.' in first place,
 * which would make a hidden file) are written %XX with uppercase hex digits. Every name a
 * StatefulSet gives its pods (a DNS subdomain) stays as it is: "visits-0.0123456789abcdef".
 * One pod name has exactly one id form: a %XX where the byte needs no escape is refused.
 * A name whose escaped form would not fit (over 220 bytes: a 253-byte DNS name with
 * escapes, or any name over 220 bytes) is cut at a character to at most 203 escaped bytes
 * and followed by "~" and 16 hex digits of a hash of the whole name; its pod name, as ids
 * show it, is then the cut name with "~HASH".
 */
#ifndef VISITS_SLOTID_H
#define VISITS_SLOTID_H

#include <stddef.h>

#define SLOT_VOLUME_LEN 16 /* hex digits of a volume id */
#define SLOT_POD_MAX 253   /* bytes of a pod name */
#define SLOT_ID_MAX 237    /* bytes of an id: libvisits' limit on a counter's file name */
#define SLOT_POD_ID_MAX (SLOT_ID_MAX - 1 - SLOT_VOLUME_LEN) /* its escaped pod part */
#define SLOT_HASH_LEN 17 /* "~" and 16 hex digits after a cut name */
#define SLOT_HASHED_PREFIX_MAX (SLOT_POD_ID_MAX - SLOT_HASH_LEN)

/* Whether pod (len bytes) can name a slot: 1..253 bytes of UTF-8 without control
 * characters. 0, or -1 with the reason in err. */
int slot_pod_check(const char *pod, size_t len, char *err, size_t errsize);
/* Whether s (len bytes) is a volume id: 16 lowercase hex digits. 1 or 0. */
int slot_volume_valid(const char *s, size_t len);
/* The id of pod's slot on volume into out (SLOT_ID_MAX + 1 bytes). 0, or -1 when pod
 * cannot name a slot (see slot_pod_check) or volume is no volume id. */
int slot_id_make(const char *pod, const char *volume, char out[SLOT_ID_MAX + 1]);
/* Checks that id (len bytes) is a slot id in its one canonical form; the pod's name goes
 * to pod (nullable; SLOT_POD_MAX + 1 bytes, NUL-terminated) and its volume id to volume
 * (nullable; SLOT_VOLUME_LEN + 1 bytes). 0, or -1 with what is wrong in err. */
int slot_id_parse(const char *id, size_t len, char *pod, char *volume, char *err, size_t errsize);

#endif /* VISITS_SLOTID_H */

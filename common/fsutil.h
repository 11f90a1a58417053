/* Small file-system helpers shared by the storage and start-up code:
 * creating a directory path, making a directory's entries durable, and
 * replacing a small private file atomically.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_FSUTIL_H
#define MOM_COMMON_FSUTIL_H

#include <stddef.h>

/* mkdir -p with mode 0700; each directory it creates is fsync'd into its
 * parent. Returns MOM_OK, MOM_ERR_TOO_LARGE (path too long), MOM_ERR_IO
 * (errno tells why) or MOM_ERR_NOSPACE. */
int fs_mkdir_p(const char *path);
/* fsync of a directory, after creating, renaming or removing entries.
 * Returns MOM_OK, MOM_ERR_IO or MOM_ERR_NOSPACE. */
int fs_fsync_dir(const char *dir);
/* Replaces path with len bytes of data, mode 0600: written to path.tmp,
 * fsync'd, renamed over path, and the directory fsync'd. Returns MOM_OK, MOM_ERR_TOO_LARGE (path
 * too long) or MOM_ERR_IO / MOM_ERR_NOSPACE (errno tells why). */
int fs_write_private(const char *path, const void *data, size_t len);

#endif

/* Small file-system helpers shared by the storage and start-up code:
 * creating a directory path and making a directory's entries durable.
 * SPDX-License-Identifier: MIT */
#ifndef MOM_COMMON_FSUTIL_H
#define MOM_COMMON_FSUTIL_H

/* mkdir -p with mode 0700. Returns MOM_OK, MOM_ERR_TOO_LARGE (path too
 * long) or MOM_ERR_IO (errno tells why). */
int fs_mkdir_p(const char *path);
/* fsync of a directory, after creating, renaming or removing entries.
 * Returns MOM_OK, MOM_ERR_IO or MOM_ERR_NOSPACE. */
int fs_fsync_dir(const char *dir);

#endif

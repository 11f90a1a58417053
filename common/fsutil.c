/* mkdir -p, directory fsync and private-file replacement (see fsutil.h).
 * SPDX-License-Identifier: MIT */
#include "common/fsutil.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsync of the directory holding path (its entry for the last component). */
static int fsync_parent(const char *path)
{
    char dir[4096];
    size_t len = strlen(path);
    if (len >= sizeof dir)
        return MOM_ERR_TOO_LARGE;
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return fs_fsync_dir(".");
    if (slash == dir)
        slash++; /* the root */
    *slash = '\0';
    return fs_fsync_dir(dir);
}

/* Each directory it creates is made durable in its parent at once: a
 * directory whose entry a power loss could take back would take every file
 * in it along, however carefully those were synced. */
int fs_mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return MOM_ERR_TOO_LARGE;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) == 0) {
            int rc = fsync_parent(buf);
            if (rc != MOM_OK)
                return rc;
        } else if (errno != EEXIST) {
            return MOM_ERR_IO;
        }
        *p = c;
        if (c == '\0')
            return MOM_OK;
    }
}

int fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return MOM_ERR_IO;
    int rc = fsync(fd) == 0 ? MOM_OK : mom_err_from_errno(errno);
    close(fd);
    return rc;
}

int fs_write_private(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return MOM_ERR_TOO_LARGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return MOM_ERR_IO;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int rc = n < 0 ? mom_err_from_errno(errno) : MOM_ERR_IO;
            close(fd);
            unlink(tmp);
            return rc;
        }
        p += n;
        left -= (size_t)n;
    }
    int rc = fsync(fd) == 0 ? MOM_OK : mom_err_from_errno(errno);
    close(fd);
    if (rc == MOM_OK && rename(tmp, path) != 0)
        rc = mom_err_from_errno(errno);
    if (rc != MOM_OK)
        unlink(tmp);
    else
        rc = fsync_parent(path); /* the rename is durable only then */
    return rc;
}

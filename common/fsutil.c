/* mkdir -p and directory fsync (see fsutil.h).
 * SPDX-License-Identifier: MIT */
#include "common/fsutil.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return MOM_ERR_TOO_LARGE;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return MOM_ERR_IO;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? MOM_ERR_IO : MOM_OK;
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

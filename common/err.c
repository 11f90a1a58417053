/* Text for mom's error codes and the errno mapping used by the storage layer.
 * SPDX-License-Identifier: MIT */
#include "common/err.h"

#include <errno.h>

const char *mom_strerror(int err)
{
    switch (err) {
    case MOM_OK: return "ok";
    case MOM_ERR_NOMEM: return "out of memory";
    case MOM_ERR_IO: return "i/o error";
    case MOM_ERR_NOSPACE: return "no space left on device";
    case MOM_ERR_CORRUPT: return "corrupt data";
    case MOM_ERR_INVALID: return "invalid input";
    case MOM_ERR_NOTFOUND: return "not found";
    case MOM_ERR_NEED_MORE: return "need more data";
    case MOM_ERR_TOO_LARGE: return "too large";
    case MOM_ERR_PROTOCOL: return "protocol error";
    case MOM_ERR_NOT_LEADER: return "not the leader";
    case MOM_ERR_TIMEOUT: return "timed out";
    case MOM_ERR_UNAVAILABLE: return "unavailable";
    case MOM_ERR_AUTH: return "authentication failed";
    case MOM_ERR_CLOSED: return "closed";
    case MOM_ERR_EXISTS: return "already exists";
    case MOM_ERR_FOREIGN: return "belongs to another cluster";
    default: return "unknown error";
    }
}

int mom_err_from_errno(int errnum)
{
    if (errnum == ENOSPC || errnum == EDQUOT)
        return MOM_ERR_NOSPACE;
    if (errnum == ENOMEM)
        return MOM_ERR_NOMEM;
    return MOM_ERR_IO;
}

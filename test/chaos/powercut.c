/* Simulated power loss, part 1: an LD_PRELOAD interposer that journals
 * what a process does to the files under one directory, so that after
 * kill -9 test/chaos/powercut.py can cut every file back to its last
 * durable state (unsynced data lost; a create, rename, unlink or mkdir
 * whose directory was not fsync'd since undone). It is exact for the calls
 * momd makes (replication/wal.c, syncer.c, node.c, node_snapshot.c and its
 * forked child, common/fsutil.c): open/openat, write, pwrite, ftruncate,
 * fallocate, fsync/fdatasync of files and directories, rename/renameat,
 * unlink/unlinkat, mkdir, close. O_SYNC/O_DSYNC descriptors make each write
 * durable; sync_file_range and posix_fadvise are not interposed because
 * they make nothing durable. FILE streams opened with fopen are not seen
 * (momd only reads through them; its snapshot writer uses fopencookie,
 * whose writes call write()). As a test tool loaded into another process
 * it necessarily keeps its state in globals, guarded by one mutex.
 *
 * Settings (environment):
 *   POWERCUT_ROOT     directory whose files are tracked (required)
 *   POWERCUT_JOURNAL  journal file; the directory <journal>-links keeps a hard
 *                     link to every file unlinked or replaced by a rename
 *                     until its directory is fsync'd, so the cut can bring
 *                     it back
 *   POWERCUT_ENOSPC   a path: while that file exists, writes, fallocate
 *                     and creates under the root fail with ENOSPC (a full
 *                     disk)
 *
 * Journal: one line per event, appended with one write() (O_APPEND), fields
 * separated by tabs; <id> is "dev:ino", paths are absolute:
 *   F <id> <size>           first open of an existing file (durable size)
 *   C <id> <path>           file created
 *   W <id> <offset> <len>   data written
 *   T <id> <size>           truncated (ftruncate, O_TRUNC)
 *   s <seq> <id> <size>     fsync/fdatasync of a file begins (its size then)
 *   S <seq>                 ... and succeeded: what was journaled before
 *                           its begin line is durable
 *   d <seq> <dir>, D <seq>  the same for a directory's entries
 *   R <old> <new> <backup>  renamed (backup: the replaced file, or "-")
 *   U <path> <backup>       unlinked (backup: the file, or "-")
 *   M <path>                directory made
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FD 65536
#define MAX_BACKUPS 4096

struct tracked {
    char kind; /* 0 untracked, 'f' file, 'd' directory */
    char sync; /* O_SYNC or O_DSYNC */
    dev_t dev;
    ino_t ino;
    char *path; /* directories only */
};

struct backup {
    char *dir;  /* whose fsync makes it unneeded */
    char *path; /* the hard link in <journal>.d */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tracked fds[MAX_FD];
static struct backup backups[MAX_BACKUPS];
static int n_backups;
static char root[PATH_MAX];
static size_t root_len;
static char backup_dir[PATH_MAX];
static const char *enospc_flag;
static int journal_fd = -1;
static unsigned long seq_counter;
static unsigned long backup_counter;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_close)(int);

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

/* the snapshot child is forked while the sync thread may hold the lock */
static void before_fork(void)
{
    pthread_mutex_lock(&lock);
}

static void after_fork(void)
{
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void powercut_init(void)
{
    RESOLVE(open);
    RESOLVE(openat);
    RESOLVE(write);
    RESOLVE(pwrite);
    RESOLVE(ftruncate);
    RESOLVE(fallocate);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(rename);
    RESOLVE(renameat);
    RESOLVE(unlink);
    RESOLVE(unlinkat);
    RESOLVE(mkdir);
    RESOLVE(close);
    const char *r = getenv("POWERCUT_ROOT");
    const char *j = getenv("POWERCUT_JOURNAL");
    enospc_flag = getenv("POWERCUT_ENOSPC");
    if (!r || !j)
        return;
    (void)real_mkdir(r, 0755);
    if (!realpath(r, root))
        return;
    root_len = strlen(root);
    if (snprintf(backup_dir, sizeof backup_dir, "%s-links", j) >= (int)sizeof backup_dir)
        return;
    (void)real_mkdir(backup_dir, 0755);
    journal_fd = real_open(j, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pthread_atfork(before_fork, after_fork, after_fork);
}

static int active(void)
{
    return journal_fd >= 0;
}

static void journal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void journal(const char *fmt, ...)
{
    char line[3 * PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof line - 1)
        abort(); /* a cut from a partial journal would be wrong */
    line[n++] = '\n';
    if (real_write(journal_fd, line, (size_t)n) != n)
        abort();
}

/* Removes "." and "" components and resolves ".." lexically, in place
 * (momd names its parent directory as "<dir>/.."). */
static void normalize(char *path)
{
    char *out = path;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - p);
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            *out++ = '/';
            memmove(out, p, n);
            out += n;
        }
        p = e;
    }
    if (out == path)
        *out++ = '/';
    *out = 0;
}

/* The absolute path of name as seen from dirfd (or the cwd), in out. */
static int full_path(int dirfd, const char *name, char *out, size_t cap)
{
    int n;
    if (name[0] == '/') {
        n = snprintf(out, cap, "%s", name);
    } else if (dirfd == AT_FDCWD) {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return -1;
        n = snprintf(out, cap, "%s/%s", cwd, name);
    } else {
        if (dirfd < 0 || dirfd >= MAX_FD || fds[dirfd].kind != 'd')
            return -1;
        n = snprintf(out, cap, "%s/%s", fds[dirfd].path, name);
    }
    if (n < 0 || n >= (int)cap)
        return -1;
    normalize(out);
    return 0;
}

static int under_root(const char *path)
{
    return root_len && strncmp(path, root, root_len) == 0 &&
           (path[root_len] == '/' || path[root_len] == 0);
}

static int disk_full(void)
{
    return enospc_flag && access(enospc_flag, F_OK) == 0;
}

static void dir_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = 0;
}

/* Hard-links path into the backup directory; the link's path or "-". */
static void keep_backup(const char *path, const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "-");
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || n_backups == MAX_BACKUPS)
        return;
    char b[PATH_MAX];
    if (snprintf(b, sizeof b, "%s/%ld-%lu", backup_dir, (long)getpid(), ++backup_counter) >=
            (int)sizeof b ||
        link(path, b) != 0)
        return;
    backups[n_backups].dir = strdup(dir);
    backups[n_backups].path = strdup(b);
    n_backups++;
    snprintf(out, cap, "%s", b);
}

/* After a durable fsync of dir: the backups of its entries are unneeded. */
static void drop_backups(const char *dir)
{
    for (int i = 0; i < n_backups;) {
        if (strcmp(backups[i].dir, dir) == 0) {
            (void)real_unlink(backups[i].path);
            free(backups[i].dir);
            free(backups[i].path);
            backups[i] = backups[--n_backups];
        } else {
            i++;
        }
    }
}

static void forget(int fd)
{
    if (fd < 0 || fd >= MAX_FD)
        return;
    free(fds[fd].path);
    memset(&fds[fd], 0, sizeof fds[fd]);
}

/* The open of path (already done, fd) with flags; existed: before it. */
static void track_open(int fd, const char *path, int flags, int existed)
{
    struct stat st;
    if (fd < 0 || fd >= MAX_FD || fstat(fd, &st) != 0)
        return;
    forget(fd);
    if (S_ISDIR(st.st_mode)) {
        fds[fd] =
            (struct tracked){.kind = 'd', .dev = st.st_dev, .ino = st.st_ino, .path = strdup(path)};
        return;
    }
    if (!S_ISREG(st.st_mode))
        return;
    fds[fd] = (struct tracked){
        .kind = 'f', .dev = st.st_dev, .ino = st.st_ino, .sync = (flags & (O_SYNC | O_DSYNC)) != 0};
    if (!existed) {
        journal("C\t%lu:%lu\t%s", (unsigned long)st.st_dev, (unsigned long)st.st_ino, path);
    } else {
        journal("F\t%lu:%lu\t%lld", (unsigned long)st.st_dev, (unsigned long)st.st_ino,
                (long long)st.st_size);
        if (flags & O_TRUNC)
            journal("T\t%lu:%lu\t0", (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    }
}

static int do_open(int dirfd, const char *name, int flags, mode_t mode, int at)
{
    char path[PATH_MAX];
    int tracked = 0, existed = 1;
    if (active()) {
        pthread_mutex_lock(&lock);
        tracked = full_path(dirfd, name, path, sizeof path) == 0 && under_root(path);
        if (tracked && (flags & O_CREAT)) {
            struct stat st;
            existed = lstat(path, &st) == 0;
            if (!existed && disk_full()) {
                pthread_mutex_unlock(&lock);
                errno = ENOSPC;
                return -1;
            }
        }
        if (!tracked)
            pthread_mutex_unlock(&lock);
    }
    int fd = at ? real_openat(dirfd, name, flags, mode) : real_open(name, flags, mode);
    if (tracked) {
        int saved = errno;
        if (fd >= 0)
            track_open(fd, path, flags, existed);
        pthread_mutex_unlock(&lock);
        errno = saved;
    }
    return fd;
}

int open(const char *name, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return do_open(AT_FDCWD, name, flags, mode, 0);
}

int openat(int dirfd, const char *name, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return do_open(dirfd, name, flags, mode, 1);
}

/* The tracked file behind fd (locked on success; 0 when not tracked). */
static struct tracked *file_of(int fd)
{
    if (!active() || fd < 0 || fd >= MAX_FD)
        return NULL;
    pthread_mutex_lock(&lock);
    if (fds[fd].kind == 0) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    return &fds[fd];
}

static void sync_file(struct tracked *t, int fd, int (*fn)(int), int *rc)
{
    struct stat st;
    unsigned long seq = ++seq_counter;
    if (t->kind == 'd') {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", t->path);
        journal("d\t%lu\t%s", seq, dir);
        pthread_mutex_unlock(&lock);
        *rc = fn(fd);
        int saved = errno;
        pthread_mutex_lock(&lock);
        if (*rc == 0) {
            journal("D\t%lu", seq);
            drop_backups(dir);
        }
        pthread_mutex_unlock(&lock);
        errno = saved;
        return;
    }
    off_t size = fstat(fd, &st) == 0 ? st.st_size : 0;
    journal("s\t%lu\t%lu:%lu\t%lld", seq, (unsigned long)t->dev, (unsigned long)t->ino,
            (long long)size);
    pthread_mutex_unlock(&lock);
    *rc = fn(fd);
    if (*rc == 0) {
        int saved = errno;
        journal("S\t%lu", seq);
        errno = saved;
    }
}

static ssize_t after_write(struct tracked *t, int fd, ssize_t n, off_t off)
{
    if (n > 0) {
        int saved = errno;
        journal("W\t%lu:%lu\t%lld\t%zd", (unsigned long)t->dev, (unsigned long)t->ino,
                (long long)off, n);
        if (t->sync) {
            int rc;
            sync_file(t, fd, real_fdatasync, &rc); /* unlocks */
            errno = saved;
            return n;
        }
        errno = saved;
    }
    pthread_mutex_unlock(&lock);
    return n;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    struct tracked *t = file_of(fd);
    if (!t || t->kind != 'f') {
        if (t)
            pthread_mutex_unlock(&lock);
        return real_write(fd, buf, len);
    }
    if (disk_full()) {
        pthread_mutex_unlock(&lock);
        errno = ENOSPC;
        return -1;
    }
    off_t off = lseek(fd, 0, SEEK_CUR);
    if (fcntl(fd, F_GETFL) & O_APPEND) {
        struct stat st;
        off = fstat(fd, &st) == 0 ? st.st_size : off;
    }
    return after_write(t, fd, real_write(fd, buf, len), off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    struct tracked *t = file_of(fd);
    if (!t || t->kind != 'f') {
        if (t)
            pthread_mutex_unlock(&lock);
        return real_pwrite(fd, buf, len, off);
    }
    if (disk_full()) {
        pthread_mutex_unlock(&lock);
        errno = ENOSPC;
        return -1;
    }
    return after_write(t, fd, real_pwrite(fd, buf, len, off), off);
}

int ftruncate(int fd, off_t size)
{
    struct tracked *t = file_of(fd);
    if (!t)
        return real_ftruncate(fd, size);
    int rc = real_ftruncate(fd, size);
    int saved = errno;
    if (rc == 0 && t->kind == 'f')
        journal("T\t%lu:%lu\t%lld", (unsigned long)t->dev, (unsigned long)t->ino, (long long)size);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    struct tracked *t = file_of(fd);
    if (!t)
        return real_fallocate(fd, mode, off, len);
    pthread_mutex_unlock(&lock);
    if (disk_full()) {
        errno = ENOSPC;
        return -1;
    }
    /* only the size can change, and a sync records the size it made durable */
    return real_fallocate(fd, mode, off, len);
}

int fsync(int fd)
{
    struct tracked *t = file_of(fd);
    if (!t)
        return real_fsync(fd);
    int rc;
    sync_file(t, fd, real_fsync, &rc);
    return rc;
}

int fdatasync(int fd)
{
    struct tracked *t = file_of(fd);
    if (!t)
        return real_fdatasync(fd);
    int rc;
    sync_file(t, fd, real_fdatasync, &rc);
    return rc;
}

int close(int fd)
{
    if (active() && fd >= 0 && fd < MAX_FD) {
        pthread_mutex_lock(&lock);
        forget(fd);
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

static int do_rename(int olddir, const char *oldname, int newdir, const char *newname, int at)
{
    char from[PATH_MAX], to[PATH_MAX], backup[PATH_MAX], dir[PATH_MAX];
    if (!active())
        return at ? real_renameat(olddir, oldname, newdir, newname) : real_rename(oldname, newname);
    pthread_mutex_lock(&lock);
    int tracked = full_path(olddir, oldname, from, sizeof from) == 0 &&
                  full_path(newdir, newname, to, sizeof to) == 0 && under_root(from) &&
                  under_root(to);
    if (tracked) {
        dir_of(to, dir, sizeof dir);
        keep_backup(to, dir, backup, sizeof backup);
    }
    int rc = at ? real_renameat(olddir, oldname, newdir, newname) : real_rename(oldname, newname);
    int saved = errno;
    if (tracked && rc == 0)
        journal("R\t%s\t%s\t%s", from, to, backup);
    else if (tracked && strcmp(backup, "-") != 0)
        (void)real_unlink(backup); /* the rename failed: nothing to undo */
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}

int rename(const char *from, const char *to)
{
    return do_rename(AT_FDCWD, from, AT_FDCWD, to, 0);
}

int renameat(int olddir, const char *from, int newdir, const char *to)
{
    return do_rename(olddir, from, newdir, to, 1);
}

static int do_unlink(int dirfd, const char *name, int flags, int at)
{
    char path[PATH_MAX], backup[PATH_MAX], dir[PATH_MAX];
    if (!active() || (flags & AT_REMOVEDIR))
        return at ? real_unlinkat(dirfd, name, flags) : real_unlink(name);
    pthread_mutex_lock(&lock);
    int tracked = full_path(dirfd, name, path, sizeof path) == 0 && under_root(path);
    if (tracked) {
        dir_of(path, dir, sizeof dir);
        keep_backup(path, dir, backup, sizeof backup);
    }
    int rc = at ? real_unlinkat(dirfd, name, flags) : real_unlink(name);
    int saved = errno;
    if (tracked && rc == 0)
        journal("U\t%s\t%s", path, backup);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}

int unlink(const char *name)
{
    return do_unlink(AT_FDCWD, name, 0, 0);
}

int unlinkat(int dirfd, const char *name, int flags)
{
    return do_unlink(dirfd, name, flags, 1);
}

int mkdir(const char *name, mode_t mode)
{
    if (!active())
        return real_mkdir(name, mode);
    char path[PATH_MAX];
    pthread_mutex_lock(&lock);
    int tracked = full_path(AT_FDCWD, name, path, sizeof path) == 0 && under_root(path);
    int rc = real_mkdir(name, mode);
    int saved = errno;
    if (tracked && rc == 0)
        journal("M\t%s", path);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}

/* The same calls under their large-file names (programs built with
 * _FILE_OFFSET_BITS=64 call these; on LP64 they are the same functions). */
int open64(const char *name, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *name, int flags, ...) __attribute__((alias("openat")));

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    return pwrite(fd, buf, len, off);
}

int ftruncate64(int fd, off_t size)
{
    return ftruncate(fd, size);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    return fallocate(fd, mode, off, len);
}

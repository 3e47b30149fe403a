/*
 * export.c - each stored message copied out as files: Maildir, mbox (mboxrd) and one
 * .eml per message. Names are built only from our message id (checked against a small
 * alphabet here too), the time and our hostname (rule 11); nothing a client sent becomes
 * part of a path. Maildir and .eml files are written under a temporary name, fsync'd and
 * renamed, and the directory fsync'd, so after a crash a file is absent or complete.
 * The mbox is appended under flock + fcntl lock and cut back to its old size if the
 * append fails. A crash in the middle of an append leaves a torn message at the end; the
 * next append starts with the blank line it lacks (export_mbox_separator), so the torn
 * message never swallows the next one.
 *
 * The directories are held open (openat/renameat), so the paths are parsed once.
 * Used by the ingest thread only.
 */
#include "mailsink/store/export.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Both well under NAME_MAX once joined into "<secs>.<id>.<host>". */
#define EXPORT_ID_MAX 128
#define EXPORT_HOST_MAX 63
#define EXPORT_SENDER_MAX 256

struct exporter {
    char *maildir, *mbox, *eml_dir; /* as given, for messages */
    int md_tmp_fd, md_new_fd;       /* -1 without --maildir */
    int eml_fd;                     /* -1 without --eml-dir */
    char host[EXPORT_HOST_MAX + 1]; /* for Maildir names */
};

/* Errors accumulate ("a; b") because one failing target does not stop the others. */
__attribute__((format(printf, 3, 4))) static void
export_err(char *err, size_t errsize, const char *fmt, ...)
{
    if (!err || errsize == 0)
        return;
    size_t used = strnlen(err, errsize - 1);
    if (used > 0 && used + 2 < errsize) {
        memcpy(err + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errsize - used, fmt, ap);
    va_end(ap);
}

static int
export_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* mkdir -p with 0700 for what we create; returns an open fd of the final directory. */
static int
export_mkdirs(const char *path)
{
    size_t len = strlen(path);
    char *p = malloc(len + 1);
    if (!p)
        return -1;
    memcpy(p, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return -1;
        }
        p[i] = saved;
    }
    free(p);
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int
export_subdir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return -1;
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int
export_open_maildir(exporter *ex, const char *dir, char *err, size_t errsize)
{
    int root = export_mkdirs(dir);
    if (root < 0)
        goto fail;
    int cur = export_subdir(root, "cur");
    if (cur >= 0)
        close(cur);
    ex->md_tmp_fd = cur >= 0 ? export_subdir(root, "tmp") : -1;
    ex->md_new_fd = ex->md_tmp_fd >= 0 ? export_subdir(root, "new") : -1;
    int e = errno;
    close(root);
    errno = e;
    if (ex->md_new_fd >= 0)
        return 0;
fail:
    export_err(err, errsize, "--maildir %s: %s", dir, strerror(errno));
    return -1;
}

static int
export_open_mbox(const char *file, char *err, size_t errsize)
{
    const char *slash = strrchr(file, '/');
    if (slash && slash != file) {
        char *parent = strndup(file, (size_t)(slash - file));
        int pfd = parent ? export_mkdirs(parent) : -1;
        free(parent);
        if (pfd < 0)
            goto fail;
        close(pfd);
    }
    /* Opened once now so that a bad path is a startup error, not a per-message one. */
    int fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    close(fd);
    return 0;
fail:
    export_err(err, errsize, "--mbox %s: %s", file, strerror(errno));
    return -1;
}

/* Maildir names must not contain '/' or ':' (the info separator); keep it plain. */
static void
export_hostname(char *out, size_t outsize)
{
    char h[256];
    if (gethostname(h, sizeof h) != 0)
        h[0] = '\0';
    h[sizeof h - 1] = '\0';
    size_t n = 0;
    for (size_t i = 0; h[i] && n + 1 < outsize; i++) {
        char c = h[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, outsize, "localhost");
}

exporter *
export_open(const char *maildir, const char *mbox, const char *eml_dir, char *err, size_t errsize)
{
    if (err && errsize > 0)
        err[0] = '\0';
    exporter *ex = calloc(1, sizeof *ex);
    if (!ex) {
        export_err(err, errsize, "out of memory");
        return NULL;
    }
    ex->md_tmp_fd = ex->md_new_fd = ex->eml_fd = -1;
    export_hostname(ex->host, sizeof ex->host);
    if ((maildir && !(ex->maildir = strdup(maildir))) || (mbox && !(ex->mbox = strdup(mbox))) ||
        (eml_dir && !(ex->eml_dir = strdup(eml_dir)))) {
        export_err(err, errsize, "out of memory");
        goto fail;
    }
    if (maildir && export_open_maildir(ex, maildir, err, errsize) < 0)
        goto fail;
    if (mbox && export_open_mbox(mbox, err, errsize) < 0)
        goto fail;
    if (eml_dir && (ex->eml_fd = export_mkdirs(eml_dir)) < 0) {
        export_err(err, errsize, "--eml-dir %s: %s", eml_dir, strerror(errno));
        goto fail;
    }
    return ex;
fail:
    export_close(ex);
    return NULL;
}

void
export_close(exporter *ex)
{
    if (!ex)
        return;
    if (ex->md_tmp_fd >= 0)
        close(ex->md_tmp_fd);
    if (ex->md_new_fd >= 0)
        close(ex->md_new_fd);
    if (ex->eml_fd >= 0)
        close(ex->eml_fd);
    free(ex->maildir);
    free(ex->mbox);
    free(ex->eml_dir);
    free(ex);
}

/* Our ids are [0-9A-Z]; this is the last line of defence for rule 11 all the same. A
   leading '.' is refused so "." and ".." and our own temporary names are impossible. */
static bool
export_id_is_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > EXPORT_ID_MAX || id[0] == '.')
        return false;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* Write data as tmp in tmp_dir, fsync, rename to name in dst_dir, fsync dst_dir. */
static int
export_file_commit(int tmp_dir, const char *tmp, int dst_dir, const char *name, const char *data,
                   size_t len)
{
    int fd = openat(tmp_dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* Left by a crash in the middle of an earlier write of this id: never visible. */
        unlinkat(tmp_dir, tmp, 0);
        fd = openat(tmp_dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return -1;
    int rc = export_write_all(fd, data, len);
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && renameat(tmp_dir, tmp, dst_dir, name) < 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        unlinkat(tmp_dir, tmp, 0);
        errno = e;
        return -1;
    }
    /* The rename is durable only once the directory holding the new name is synced. */
    return fsync(dst_dir);
}

static int
export_maildir_write(exporter *ex, const char *id, int64_t received_ms, const char *raw, size_t len,
                     char *err, size_t errsize)
{
    char name[256];
    int n = snprintf(name, sizeof name, "%" PRId64 ".%s.%s", received_ms / 1000, id, ex->host);
    if (n < 0 || (size_t)n >= sizeof name) {
        export_err(err, errsize, "--maildir %s: file name too long", ex->maildir);
        return -1;
    }
    if (export_file_commit(ex->md_tmp_fd, name, ex->md_new_fd, name, raw, len) < 0) {
        export_err(err, errsize, "--maildir %s: %s", ex->maildir, strerror(errno));
        return -1;
    }
    return 0;
}

static int
export_eml_write(exporter *ex, const char *id, const char *raw, size_t len, char *err,
                 size_t errsize)
{
    char name[EXPORT_ID_MAX + 8], tmp[EXPORT_ID_MAX + 8];
    snprintf(name, sizeof name, "%s.eml", id);
    snprintf(tmp, sizeof tmp, ".%s.tmp", id); /* fits: id length is checked */
    if (export_file_commit(ex->eml_fd, tmp, ex->eml_fd, name, raw, len) < 0) {
        export_err(err, errsize, "--eml-dir %s: %s", ex->eml_dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* "From sender Thu Jan  1 00:00:00 1970\n": asctime's form, in UTC, built by hand so the
   locale cannot change the day and month names. The sender is the client's: anything
   that could split or end the line (space, controls) becomes '_' (rule 7). */
static size_t
export_mbox_from_line(char *out, size_t outsize, const char *sender, int64_t received_ms)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char who[EXPORT_SENDER_MAX + 1];
    size_t n = 0;
    for (; sender && sender[n] && n < EXPORT_SENDER_MAX; n++) {
        unsigned char c = (unsigned char)sender[n];
        who[n] = (c <= 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    who[n] = '\0';
    time_t t = (time_t)(received_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    int len = snprintf(out, outsize, "From %s %s %s %2d %02d:%02d:%02d %d\n",
                       n > 0 ? who : "MAILER-DAEMON", days[(unsigned)tm.tm_wday % 7],
                       months[(unsigned)tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, tm.tm_year + 1900);
    return len < 0 ? 0 : (size_t)len < outsize ? (size_t)len : outsize - 1;
}

/* mboxrd body: CRLF -> LF, a '>' before every line matching ^>*From , a final LF if the
   message lacks one, then the blank line that separates messages. With out == NULL it
   only counts, so the caller can allocate exactly. */
static size_t
export_mbox_body(const char *raw, size_t len, char *out)
{
    size_t o = 0, i = 0;
    while (i < len) {
        const char *nl = memchr(raw + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - raw) : len;
        size_t line_end = (nl && end > i && raw[end - 1] == '\r') ? end - 1 : end;
        size_t k = i;
        while (k < line_end && raw[k] == '>')
            k++;
        if (line_end - k >= 5 && memcmp(raw + k, "From ", 5) == 0) {
            if (out)
                out[o] = '>';
            o++;
        }
        if (out)
            memcpy(out + o, raw + i, line_end - i);
        o += line_end - i;
        if (out)
            out[o] = '\n';
        o++;
        i = nl ? end + 1 : len;
    }
    if (out)
        out[o] = '\n';
    return o + 1;
}

/* Both lock kinds: mutt and procmail use fcntl, others flock; Linux keeps them apart. */
static int
export_mbox_lock(int fd)
{
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return -1;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    while (fcntl(fd, F_SETLKW, &fl) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* The separator the file needs before our From line: every message we append ends in a
   blank line ("\n\n"), but a crash in the middle of an append leaves a torn tail, and a
   file another program wrote may end in one newline or none. Without a separator the
   next From line would be glued to the last line and our message swallowed into the
   one before. The torn or foreign tail itself is left as it is: deleting anything we
   cannot prove we wrote could lose someone's mail. Called under the lock. */
static const char *
export_mbox_separator(int fd, off_t size)
{
    char tail[2];
    if (size == 0)
        return "";
    if (size == 1) {
        tail[0] = '\n';
        if (pread(fd, tail + 1, 1, 0) != 1)
            return "\n\n";
    } else if (pread(fd, tail, 2, size - 2) != 2) {
        return "\n\n";
    }
    if (tail[1] != '\n')
        return "\n\n";
    return tail[0] == '\n' ? "" : "\n";
}

static int
export_mbox_append(const char *file, const char *data, size_t len)
{
    int fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = export_mbox_lock(fd);
    if (rc == 0)
        rc = fstat(fd, &st);
    if (rc == 0) {
        const char *sep = export_mbox_separator(fd, st.st_size);
        rc = export_write_all(fd, sep, strlen(sep));
        if (rc == 0)
            rc = export_write_all(fd, data, len);
        if (rc < 0) {
            int e = errno;
            /* Under the lock nobody else appended: cutting back removes only our part. */
            if (ftruncate(fd, st.st_size) == 0)
                fsync(fd);
            errno = e;
        }
    }
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) < 0 && rc == 0)
        return -1; /* the locks go with the close */
    errno = e;
    return rc;
}

static int
export_mbox_write(exporter *ex, const char *sender, int64_t received_ms, const char *raw,
                  size_t len, char *err, size_t errsize)
{
    char from[EXPORT_SENDER_MAX + 64];
    size_t flen = export_mbox_from_line(from, sizeof from, sender, received_ms);
    size_t blen = export_mbox_body(raw, len, NULL);
    char *data = malloc(flen + blen);
    if (!data) {
        export_err(err, errsize, "--mbox %s: out of memory", ex->mbox);
        return -1;
    }
    memcpy(data, from, flen);
    export_mbox_body(raw, len, data + flen);
    int rc = export_mbox_append(ex->mbox, data, flen + blen);
    if (rc < 0)
        export_err(err, errsize, "--mbox %s: %s", ex->mbox, strerror(errno));
    free(data);
    return rc;
}

int
export_write(exporter *ex, const char *id, const char *sender, int64_t received_ms, const char *raw,
             size_t len, char *err, size_t errsize)
{
    if (err && errsize > 0)
        err[0] = '\0';
    if (!ex || (!ex->maildir && !ex->mbox && !ex->eml_dir))
        return 0;
    if (!export_id_is_ok(id)) {
        export_err(err, errsize, "export: refusing message id unfit for a file name");
        return -1;
    }
    if (!raw)
        len = 0;
    int rc = 0;
    if (ex->maildir && export_maildir_write(ex, id, received_ms, raw, len, err, errsize) < 0)
        rc = -1;
    if (ex->mbox && export_mbox_write(ex, sender, received_ms, raw, len, err, errsize) < 0)
        rc = -1;
    if (ex->eml_dir && export_eml_write(ex, id, raw, len, err, errsize) < 0)
        rc = -1;
    return rc;
}

/*
 * failmalloc.c - an LD_PRELOAD library that makes malloc fail, for the fault table's row
 * "malloc failure" (tests/e2e/faults/test_malloc_failure.py).
 *
 * malloc, calloc, realloc, posix_memalign and aligned_alloc count their calls (all
 * threads together). The first FAILMALLOC_AFTER calls succeed, so the process can start;
 * after that one call in FAILMALLOC_ONE_IN fails (returns NULL with ENOMEM), chosen by
 * a hash of the call's number and FAILMALLOC_SEED, so a run can be repeated. With
 * FAILMALLOC_ONE_IN=1 every call after the first FAILMALLOC_AFTER fails. Unset or 0
 * FAILMALLOC_AFTER: nothing fails.
 *
 * FAILMALLOC_SPARE="libglib-2.0,libgmime-3.0": calls made from code in a shared object
 * whose file name contains one of these never fail and are not counted. GLib's policy is
 * to abort the process when g_malloc fails, so failing its calls only shows that policy;
 * sparing them puts every fault where the program's own handling (and that of libraries
 * that return errors: SQLite, libevent, OpenSSL, Jansson) is tested.
 *
 * With FAILMALLOC_REPORT set to a file name, a process
 * that exits normally writes "<calls> <failed>" there (so a test can learn how many calls
 * its start-up takes).
 *
 * The real allocator is reached through glibc's __libc_* entry points, not dlsym, which
 * would itself allocate while the first malloc is being resolved. glibc's own functions
 * (strdup, vasprintf, fopen, ...) allocate through here too, as glibc supports replacing
 * malloc; their caller, for FAILMALLOC_SPARE, is then libc, not whoever called them.
 * realloc(p, 0) and free are left alone.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define FAILMALLOC_MAX_SPARED 32

static uint64_t failmalloc_after, failmalloc_one_in, failmalloc_seed;
static struct {
    uintptr_t lo, hi;
} failmalloc_spared[FAILMALLOC_MAX_SPARED]; /* executable segments whose calls never fail */
static int failmalloc_nspared;
static uint64_t failmalloc_calls, failmalloc_failed;
static int failmalloc_ready;

static uint64_t
failmalloc_env(const char *name)
{
    const char *v = getenv(name);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* Whether name contains one of the comma-separated words of list (no allocation). */
static int
failmalloc_name_is_listed(const char *name, const char *list)
{
    while (*list) {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        for (const char *p = name; len > 0 && *p; p++)
            if (strncmp(p, list, len) == 0)
                return 1;
        list += len + (end != NULL);
    }
    return 0;
}

/* dl_iterate_phdr callback: note the executable segments of the spared objects. */
static int
failmalloc_note_spared_cb(struct dl_phdr_info *info, size_t size, void *list)
{
    (void)size;
    if (!info->dlpi_name || !failmalloc_name_is_listed(info->dlpi_name, list))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) ||
            failmalloc_nspared == FAILMALLOC_MAX_SPARED)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        failmalloc_spared[failmalloc_nspared].lo = lo;
        failmalloc_spared[failmalloc_nspared].hi = lo + ph->p_memsz;
        failmalloc_nspared++;
    }
    return 0;
}

/* Runs once every library the program links is loaded (constructors come after that). */
__attribute__((constructor)) static void
failmalloc_init(void)
{
    failmalloc_after = failmalloc_env("FAILMALLOC_AFTER");
    failmalloc_one_in = failmalloc_env("FAILMALLOC_ONE_IN");
    failmalloc_seed = failmalloc_env("FAILMALLOC_SEED");
    if (failmalloc_one_in == 0)
        failmalloc_one_in = 1;
    const char *spare = getenv("FAILMALLOC_SPARE");
    if (spare && *spare)
        dl_iterate_phdr(failmalloc_note_spared_cb, (void *)spare);
    __atomic_store_n(&failmalloc_ready, 1, __ATOMIC_RELEASE);
}

static int
failmalloc_caller_is_spared(const void *caller)
{
    uintptr_t a = (uintptr_t)caller;
    for (int i = 0; i < failmalloc_nspared; i++)
        if (a >= failmalloc_spared[i].lo && a < failmalloc_spared[i].hi)
            return 1;
    return 0;
}

/* splitmix64: a well-mixed function of the call number, so failures spread evenly. */
static uint64_t
failmalloc_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* caller: the return address of the allocation function, i.e. who called it. */
static int
failmalloc_should_fail(const void *caller)
{
    if (!__atomic_load_n(&failmalloc_ready, __ATOMIC_ACQUIRE) ||
        failmalloc_caller_is_spared(caller))
        return 0;
    uint64_t n = __atomic_add_fetch(&failmalloc_calls, 1, __ATOMIC_RELAXED);
    if (failmalloc_after == 0 || n <= failmalloc_after)
        return 0;
    if (failmalloc_mix(n ^ failmalloc_seed) % failmalloc_one_in != 0)
        return 0;
    __atomic_add_fetch(&failmalloc_failed, 1, __ATOMIC_RELAXED);
    errno = ENOMEM;
    return 1;
}

/* Written with a stack buffer and write(2): no allocation, so it cannot fail here. */
__attribute__((destructor)) static void
failmalloc_report(void)
{
    const char *path = getenv("FAILMALLOC_REPORT");
    if (!path || !*path)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 "\n",
                     __atomic_load_n(&failmalloc_calls, __ATOMIC_RELAXED),
                     __atomic_load_n(&failmalloc_failed, __ATOMIC_RELAXED));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (n > 0 && write(fd, line, (size_t)n) < 0)
            n = 0;
        close(fd);
    }
}

void *
malloc(size_t size)
{
    return failmalloc_should_fail(__builtin_return_address(0)) ? NULL : __libc_malloc(size);
}

void *
calloc(size_t n, size_t size)
{
    return failmalloc_should_fail(__builtin_return_address(0)) ? NULL : __libc_calloc(n, size);
}

void *
realloc(void *p, size_t size)
{
    if (p && size == 0)
        return __libc_realloc(p, size);
    return failmalloc_should_fail(__builtin_return_address(0)) ? NULL : __libc_realloc(p, size);
}

int
posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)) != 0)
        return EINVAL;
    if (failmalloc_should_fail(__builtin_return_address(0)))
        return ENOMEM;
    void *p = __libc_memalign(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *
aligned_alloc(size_t align, size_t size)
{
    return failmalloc_should_fail(__builtin_return_address(0)) ? NULL
                                                               : __libc_memalign(align, size);
}

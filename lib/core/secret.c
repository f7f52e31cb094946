/* Secrets kept in memory for a while (credentials), out of core dumps. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"

/* The mapping's length is kept in front of the string. */
#define SECRET_HDR 16

char *mf__secret_dup(const char *s, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    if (n > SIZE_MAX - SECRET_HDR - 1 - (size_t)page)
        return NULL;
    size_t len = (SECRET_HDR + n + 1 + (size_t)page - 1) / (size_t)page * (size_t)page;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
#ifdef MADV_DONTDUMP
    (void)madvise(m, len, MADV_DONTDUMP); /* best effort: old kernels lack it */
#endif
    memcpy(m, &len, sizeof len);
    char *p = (char *)m + SECRET_HDR;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void mf__secret_free(char *p)
{
    if (!p)
        return;
    char *m = p - SECRET_HDR;
    size_t len;
    memcpy(&len, m, sizeof len);
    explicit_bzero(m, len);
    munmap(m, len);
}

/* Clocks, ISO 8601 times, the environment and directories. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core.h"

const char *mf__getenv(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int64_t mf__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mf__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The zone after the seconds, as an offset east of UTC in seconds. */
static bool iso_zone(const char *z, size_t n, unsigned flags, int64_t *offset)
{
    *offset = 0;
    if (n == 1 && z[0] == 'Z')
        return true;
    if (!(flags & MF__ISO_ZONES))
        return false;
    if (n == 0 || (n == 3 && memcmp(z, "UTC", 3) == 0))
        return true;
    unsigned hh, mm;
    if ((z[0] != '+' && z[0] != '-') || (n != 5 && n != 6) || !digits(z + 1, 2, &hh) ||
        (n == 6 && z[3] != ':') || !digits(z + n - 2, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *offset = (int64_t)(hh * 3600 + mm * 60) * (z[0] == '-' ? -1 : 1);
    return true;
}

bool mf__iso8601_parse(const char *s, size_t len, unsigned flags, int64_t *out)
{
    static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    unsigned y, mo, d, h, mi, sec;
    if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return false;
    size_t i = 19;
    if (i < len && s[i] == '.') { /* a fraction: at least one digit, dropped */
        if (++i == len || s[i] < '0' || s[i] > '9')
            return false;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    int64_t offset;
    if (!iso_zone(s + i, len - i, flags, &offset))
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60) /* 60: a leap second, as the next minute's :00 */
        return false;
    *out = days_from_civil(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + sec) - offset;
    return true;
}

int mf__mkdir_p(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    if (!p)
        return mf__error_oom();
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        if (p[i - 1] == '/')
            continue; /* "a//b" */
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int rc = mf__error_errno(errno, "cannot create directory", p);
            free(p);
            return rc;
        }
        p[i] = c;
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0)
        return mf__error_errno(errno, "cannot create directory", path);
    if (!S_ISDIR(st.st_mode))
        return mf__error_set(MF_EIO, "'%s' is not a directory", path);
    return MF_OK;
}

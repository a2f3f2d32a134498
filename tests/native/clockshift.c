/* clockshift: step the wall clock of one process tree, as an NTP step or a technician
 * setting the date would, without touching the machine's clock (that needs
 * CAP_SYS_TIME and would disturb everything else running).
 *
 * LD_PRELOAD=clockshift.so CLOCKSHIFT_FILE=/path/offset  some-program
 *
 * The file holds the offset in seconds (e.g. "86400", "-3600.5"), added to
 * CLOCK_REALTIME (clock_gettime, gettimeofday, time). It is read again at most every
 * 50 ms, so a test changes the offset of running processes by rewriting the file.
 * The monotonic clocks are left alone: a real step moves only the wall clock.
 * (libfaketime does this and more, but its 0.9.10 breaks Python 3.11's time.sleep
 * with EINVAL when the monotonic clock is left alone.)
 *
 * Built by tests/test_reliability_clock_step.py with: cc -shared -fPIC -O2 -o clockshift.so
 * clockshift.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static long long offset_ns;      /* read and written with __atomic builtins */
static long long next_read_ns;   /* CLOCK_MONOTONIC time of the next read of the file */

static int real_now(clockid_t id, struct timespec *ts) {
    if (!real_clock_gettime)
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return real_clock_gettime(id, ts);
}

static long long offset(void) {
    struct timespec mono;
    if (real_now(CLOCK_MONOTONIC, &mono) != 0)
        return __atomic_load_n(&offset_ns, __ATOMIC_RELAXED);
    long long now = (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec;
    long long due = __atomic_load_n(&next_read_ns, __ATOMIC_RELAXED);
    if (now >= due && __atomic_compare_exchange_n(&next_read_ns, &due, now + 50000000LL, 0,
                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        const char *path = getenv("CLOCKSHIFT_FILE");
        int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd >= 0) {
            char buf[64];
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (n > 0) {
                buf[n] = 0;
                char *end;
                double s = strtod(buf, &end);
                if (end != buf)
                    __atomic_store_n(&offset_ns, (long long)(s * 1e9), __ATOMIC_RELAXED);
            }
        }
    }
    return __atomic_load_n(&offset_ns, __ATOMIC_RELAXED);
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offset();
    ts->tv_sec = (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
    if (ts->tv_nsec < 0) {
        ts->tv_nsec += 1000000000L;
        ts->tv_sec -= 1;
    }
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int r = real_now(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return r;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}

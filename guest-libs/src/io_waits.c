/* Reads and polls that wait for input are cancellation points (POSIX
 * lists read, readv, poll, select and pselect) and signal delivery
 * points. The host waits for input without holding anything the other
 * threads need, but a thread blocked there would never see a request to
 * cancel it or a signal: so a thread that can be cancelled, in a program
 * that can cancel, or any thread of a program that uses signals, waits in
 * slices. Each slice is a poll of what it waits for and a timeout of one
 * slice; between slices a pending request acts (pthread_exit, running the
 * cleanup handlers) and pending signals are delivered, a handler without
 * SA_RESTART ending the call with EINTR, as natively. Reads that cannot
 * wait (files, directories, descriptors in non-blocking mode) go straight
 * through, and so does every call of a program that neither cancels nor
 * uses signals. */
#include <stdint.h>
#include <wasi/api.h>

#include "cancel.h"
#include "signals.h"

/* A poll of more subscriptions than this waits as it is (unsliced): the
 * copy lives on the caller's stack, which is small. */
#define SLICED_SUBSCRIPTIONS 64

__wasi_errno_t __real___wasi_fd_read(__wasi_fd_t, const __wasi_iovec_t *, size_t,
                                     __wasi_size_t *);
__wasi_errno_t __real___wasi_poll_oneoff(const __wasi_subscription_t *, __wasi_event_t *,
                                         __wasi_size_t, __wasi_size_t *);

static int sliced(void) { return weft_cancellable() || weft_signals_used(); }

/* Between two slices: a pending request acts, pending signals are
 * delivered. EINTR once a handler without SA_RESTART ran since
 * `interrupting` was read. */
static __wasi_errno_t between_slices(unsigned interrupting) {
    __testcancel();
    if (weft_signals_used()) weft_signal_deliver();
    return weft_signals_interrupting() != interrupting ? __WASI_ERRNO_INTR : 0;
}

/* Waits in slices until `fd` has input, its end or an error; 0 to go on
 * with the read, EINTR when a handler interrupted the wait. */
static __wasi_errno_t until_readable(__wasi_fd_t fd) {
    __wasi_fdstat_t stat;
    if (__wasi_fd_fdstat_get(fd, &stat) != 0 ||
        stat.fs_filetype == __WASI_FILETYPE_REGULAR_FILE ||
        stat.fs_filetype == __WASI_FILETYPE_DIRECTORY || (stat.fs_flags & __WASI_FDFLAGS_NONBLOCK))
        return 0;
    unsigned interrupting = weft_signals_interrupting();
    for (;;) {
        __wasi_errno_t rc = between_slices(interrupting);
        if (rc) return rc;
        __wasi_subscription_t subs[2] = {
            {.userdata = 0,
             .u = {.tag = __WASI_EVENTTYPE_FD_READ, .u.fd_read = {.file_descriptor = fd}}},
            {.userdata = 1,
             .u = {.tag = __WASI_EVENTTYPE_CLOCK,
                   .u.clock = {.id = __WASI_CLOCKID_MONOTONIC,
                               .timeout = (__wasi_timestamp_t)weft_cancel_slice_ns()}}},
        };
        __wasi_event_t events[2];
        __wasi_size_t count = 0;
        /* A failed poll leaves the answer to the read itself. */
        if (__real___wasi_poll_oneoff(subs, events, 2, &count) != 0) return 0;
        for (__wasi_size_t i = 0; i < count; i++)
            if (events[i].userdata == 0) return 0;
    }
}

__wasi_errno_t __wrap___wasi_fd_read(__wasi_fd_t fd, const __wasi_iovec_t *iovs, size_t n,
                                     __wasi_size_t *out) {
    if (sliced()) {
        __wasi_errno_t rc = until_readable(fd);
        if (rc) return rc;
    } else if (weft_signals_used()) {
        weft_signal_deliver();
    }
    return __real___wasi_fd_read(fd, iovs, n, out);
}

static uint64_t now_on(__wasi_clockid_t clock) {
    __wasi_timestamp_t now = 0;
    return __wasi_clock_time_get(clock, 1, &now) == 0 ? now : 0;
}

/* A poll of one relative clock and nothing else: poll and select on no
 * descriptor, which old code sleeps with, or one of clock_nanosleep's own
 * slices. Sliced as a sleep is, one subscription at a time, so the host
 * sleeps without holding anything. */
static __wasi_errno_t timeout_sliced(const __wasi_subscription_t *in, __wasi_event_t *out,
                                     __wasi_size_t n, __wasi_size_t *nevents) {
    const __wasi_subscription_clock_t *clock = &in[0].u.u.clock;
    if (n != 1 || (clock->flags & __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) ||
        (clock->id != __WASI_CLOCKID_MONOTONIC && clock->id != __WASI_CLOCKID_REALTIME))
        return __real___wasi_poll_oneoff(in, out, n, nevents);
    if (weft_sleeping_a_slice) return __real___wasi_poll_oneoff(in, out, n, nevents);
    uint64_t slice = (uint64_t)weft_cancel_slice_ns();
    uint64_t now = now_on(clock->id);
    uint64_t deadline = clock->timeout > UINT64_MAX - now ? UINT64_MAX : now + clock->timeout;
    unsigned interrupting = weft_signals_interrupting();
    for (;;) {
        __wasi_errno_t rc = between_slices(interrupting);
        if (rc) return rc;
        now = now_on(clock->id);
        uint64_t left = deadline > now ? deadline - now : 0;
        __wasi_subscription_t sub = in[0];
        sub.u.u.clock.timeout = left < slice ? left : slice;
        rc = __real___wasi_poll_oneoff(&sub, out, 1, nevents);
        if (rc || left <= slice) return rc;
    }
}

/* poll, select and pselect. Their relative timeouts keep their deadline
 * across slices: each slice asks for what is left of them, read on the
 * thread's own clock (which on another host is that host's). */
__wasi_errno_t __wrap___wasi_poll_oneoff(const __wasi_subscription_t *in, __wasi_event_t *out,
                                         __wasi_size_t n, __wasi_size_t *nevents) {
    if (!sliced() || n == 0 || n > SLICED_SUBSCRIPTIONS)
        return __real___wasi_poll_oneoff(in, out, n, nevents);
    __wasi_subscription_t subs[SLICED_SUBSCRIPTIONS + 1];
    uint64_t deadline[SLICED_SUBSCRIPTIONS];
    __wasi_event_t events[SLICED_SUBSCRIPTIONS + 1];
    int descriptors = 0;
    for (__wasi_size_t i = 0; i < n; i++) descriptors |= in[i].u.tag != __WASI_EVENTTYPE_CLOCK;
    if (!descriptors) return timeout_sliced(in, out, n, nevents);
    /* The slice's userdata: one no subscription of the caller's has. */
    __wasi_userdata_t slice = 0x7765667400000000ull;
    for (__wasi_size_t i = 0; i < n; i++) {
        if (in[i].userdata == slice) {
            slice++;
            i = (__wasi_size_t)-1; /* look again from the start */
        }
    }
    for (__wasi_size_t i = 0; i < n; i++) {
        subs[i] = in[i];
        const __wasi_subscription_clock_t *clock = &in[i].u.u.clock;
        if (in[i].u.tag != __WASI_EVENTTYPE_CLOCK ||
            (clock->flags & __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME))
            continue;
        if (clock->id != __WASI_CLOCKID_MONOTONIC && clock->id != __WASI_CLOCKID_REALTIME)
            return __real___wasi_poll_oneoff(in, out, n, nevents);
        uint64_t now = now_on(clock->id);
        deadline[i] = clock->timeout > UINT64_MAX - now ? UINT64_MAX : now + clock->timeout;
    }
    unsigned interrupting = weft_signals_interrupting();
    for (;;) {
        __wasi_errno_t rc = between_slices(interrupting);
        if (rc) return rc;
        for (__wasi_size_t i = 0; i < n; i++) {
            __wasi_subscription_clock_t *clock = &subs[i].u.u.clock;
            if (subs[i].u.tag != __WASI_EVENTTYPE_CLOCK ||
                (clock->flags & __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME))
                continue;
            uint64_t now = now_on(clock->id);
            clock->timeout = deadline[i] > now ? deadline[i] - now : 0;
        }
        subs[n] = (__wasi_subscription_t){
            .userdata = slice,
            .u = {.tag = __WASI_EVENTTYPE_CLOCK,
                  .u.clock = {.id = __WASI_CLOCKID_MONOTONIC,
                              .timeout = (__wasi_timestamp_t)weft_cancel_slice_ns()}}};
        __wasi_size_t count = 0;
        rc = __real___wasi_poll_oneoff(subs, events, n + 1, &count);
        if (rc) return rc;
        __wasi_size_t kept = 0;
        for (__wasi_size_t i = 0; i < count && i <= n; i++)
            if (events[i].userdata != slice) out[kept++] = events[i];
        if (kept) {
            *nevents = kept;
            return 0;
        }
    }
}

/* OpenMP's reporting calls: the thread-affinity format (OpenMP 5.0
 * omp_{set,get}_affinity_format, omp_display_affinity,
 * omp_capture_affinity, OMP_AFFINITY_FORMAT and OMP_DISPLAY_AFFINITY),
 * omp_display_env and OMP_DISPLAY_ENV, and the `error` directive
 * (__kmpc_error). Everything here is built on the public omp_* calls, so
 * it reads the same internal control variables a program sees. Reports
 * go to stderr, as the other runtimes print them. */
#include <limits.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <weft/threads.h>

#include "chain.h"

/* The OpenMP version clang 19 compiles for (its _OPENMP), which this file,
 * built without -fopenmp, does not see. */
#define OPENMP_VERSION 202011

/* The format when OMP_AFFINITY_FORMAT is unset. */
#define DEFAULT_FORMAT "OMP: pid %P tid %i thread %n bound to OS proc set {%A}"
#define FORMAT_MAX 512

/* Both are set before main (read_environment_at_start), while there is
 * one thread: set lazily by whichever member came first, they were writes
 * of several chained threads to the same bytes, a conflict. */
static char affinity_format[FORMAT_MAX] = DEFAULT_FORMAT;
static int display_affinity;
static atomic_uint format_lock;

static void format_lock_acquire(void) {
    unsigned expected = 0;
    while (!atomic_compare_exchange_weak(&format_lock, &expected, 1)) expected = 0;
}

static void format_lock_release(void) { atomic_store(&format_lock, 0); }

/* A copy of the current format, so that formatting never holds the lock. */
static void format_copy(char *out) {
    format_lock_acquire();
    memcpy(out, affinity_format, FORMAT_MAX);
    format_lock_release();
}

void omp_set_affinity_format(const char *format) {
    format_lock_acquire();
    snprintf(affinity_format, sizeof affinity_format, "%s", format ? format : "");
    format_lock_release();
}

size_t omp_get_affinity_format(char *buffer, size_t size) {
    char format[FORMAT_MAX];
    format_copy(format);
    if (buffer && size) snprintf(buffer, size, "%s", format);
    return strlen(format);
}

/* Appends `text` to out[*len..size) (truncating, always terminated when
 * size > 0) and counts it in *len whether or not it fitted. */
static void append(char *out, size_t size, size_t *len, const char *text) {
    size_t n = strlen(text);
    if (*len + 1 < size) {
        size_t room = size - 1 - *len;
        memcpy(out + *len, text, n < room ? n : room);
    }
    *len += n;
    if (size) out[*len < size ? *len : size - 1] = 0;
}

/* The value of one field, by its short or long name; NULL if unknown. */
static const char *field_value(const char *name, size_t name_len, char *scratch, size_t size) {
    static const struct {
        char letter;
        const char *word;
    } fields[] = {{'t', "team_num"},      {'T', "num_teams"},     {'L', "nesting_level"},
                  {'n', "thread_num"},    {'N', "num_threads"},   {'a', "ancestor_tnum"},
                  {'H', "host"},          {'P', "process_id"},    {'i', "native_thread_id"},
                  {'A', "thread_affinity"}};
    char letter = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if ((name_len == 1 && name[0] == fields[i].letter) ||
            (strlen(fields[i].word) == name_len && !strncmp(name, fields[i].word, name_len)))
            letter = fields[i].letter;
    }
    switch (letter) {
    case 't': snprintf(scratch, size, "%d", omp_get_team_num()); break;
    case 'T': snprintf(scratch, size, "%d", omp_get_num_teams()); break;
    case 'L': snprintf(scratch, size, "%d", omp_get_level()); break;
    case 'n': snprintf(scratch, size, "%d", omp_get_thread_num()); break;
    case 'N': snprintf(scratch, size, "%d", omp_get_num_threads()); break;
    case 'a': snprintf(scratch, size, "%d", omp_get_ancestor_thread_num(omp_get_level() - 1)); break;
    case 'H':
        if (gethostname(scratch, size) != 0) snprintf(scratch, size, "localhost");
        break;
    case 'P': snprintf(scratch, size, "%d", getpid()); break;
    case 'i': snprintf(scratch, size, "%u", (unsigned)weft_thread_current_id()); break;
    case 'A': {
        /* Threads are not bound: every processor the program may use. */
        int procs = omp_get_num_procs();
        if (procs > 1) snprintf(scratch, size, "0-%d", procs - 1);
        else snprintf(scratch, size, "0");
        break;
    }
    default: return NULL;
    }
    return scratch;
}

/* Formats `format` (OpenMP's fields: %[0][.][width]letter or
 * %[0][.][width]{name}) into buffer; the length of the whole result. */
static size_t affinity_format_into(char *buffer, size_t size, const char *format) {
    size_t len = 0;
    if (size) buffer[0] = 0;
    char piece[2] = {0, 0};
    for (const char *p = format; *p;) {
        if (*p != '%') {
            piece[0] = *p++;
            append(buffer, size, &len, piece);
            continue;
        }
        const char *start = p++;
        if (*p == '%') {
            append(buffer, size, &len, "%");
            p++;
            continue;
        }
        int zeros = 0, right = 0, width = 0;
        if (*p == '0') zeros = right = 1, p++;
        if (*p == '.') right = 1, p++;
        while (*p >= '0' && *p <= '9' && width < 4096) width = width * 10 + (*p++ - '0');
        const char *name = p;
        size_t name_len = 1;
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close) name_len = 0;
            else name = p + 1, name_len = (size_t)(close - p - 1), p = close + 1;
        } else if (*p) {
            p++;
        } else {
            name_len = 0;
        }
        char scratch[256], padded[4352];
        const char *value = name_len ? field_value(name, name_len, scratch, sizeof scratch) : NULL;
        if (!value) {
            /* An unknown field is printed as written. */
            size_t n = (size_t)(p - start);
            char raw[64];
            snprintf(raw, sizeof raw, "%.*s", (int)(n < 63 ? n : 63), start);
            append(buffer, size, &len, raw);
            continue;
        }
        int n = (int)strlen(value);
        if (width <= n) {
            append(buffer, size, &len, value);
        } else if (!right) {
            snprintf(padded, sizeof padded, "%-*s", width, value);
            append(buffer, size, &len, padded);
        } else if (zeros && (value[0] >= '0' && value[0] <= '9')) {
            snprintf(padded, sizeof padded, "%0*d%s", width - n, 0, value);
            append(buffer, size, &len, padded);
        } else {
            snprintf(padded, sizeof padded, "%*s", width, value);
            append(buffer, size, &len, padded);
        }
    }
    return len;
}

size_t omp_capture_affinity(char *buffer, size_t size, const char *format) {
    char current[FORMAT_MAX];
    if (!format || !*format) {
        format_copy(current);
        format = current;
    }
    return affinity_format_into(buffer, buffer ? size : 0, format);
}

void omp_display_affinity(const char *format) {
    char line[1024];
    size_t len = omp_capture_affinity(line, sizeof line, format);
    (void)len;
    fprintf(stderr, "%s\n", line);
}

/* OMP_DISPLAY_AFFINITY=true: each thread shows its line the first time it
 * runs in a parallel region (omp.c calls this as a member starts). */
static _Thread_local int affinity_shown;

void weft_omp_member_started(void) {
    if (!display_affinity || affinity_shown) return;
    affinity_shown = 1;
    omp_display_affinity(NULL);
}

static const char *schedule_name(omp_sched_t kind) {
    switch ((int)kind & ~(int)omp_sched_monotonic) {
    case omp_sched_static: return "STATIC";
    case omp_sched_dynamic: return "DYNAMIC";
    case omp_sched_guided: return "GUIDED";
    default: return "AUTO";
    }
}

static const char *yes_no(int on) { return on ? "TRUE" : "FALSE"; }

void omp_display_env(int verbose) {
    omp_sched_t kind;
    int chunk;
    omp_get_schedule(&kind, &chunk);
    char format[FORMAT_MAX];
    format_copy(format);
    FILE *out = stderr;
    fprintf(out, "\nOPENMP DISPLAY ENVIRONMENT BEGIN\n");
    fprintf(out, "  _OPENMP = '%d'\n", OPENMP_VERSION);
    fprintf(out, "  OMP_DYNAMIC = '%s'\n", yes_no(omp_get_dynamic()));
    fprintf(out, "  OMP_NESTED = '%s'\n", yes_no(omp_get_max_active_levels() > 1));
    fprintf(out, "  OMP_NUM_THREADS = '%d'\n", omp_get_max_threads());
    if (chunk > 0) fprintf(out, "  OMP_SCHEDULE = '%s,%d'\n", schedule_name(kind), chunk);
    else fprintf(out, "  OMP_SCHEDULE = '%s'\n", schedule_name(kind));
    fprintf(out, "  OMP_PROC_BIND = 'FALSE'\n");
    fprintf(out, "  OMP_PLACES = ''\n");
    const char *stack = getenv("OMP_STACKSIZE");
    fprintf(out, "  OMP_STACKSIZE = '%s'\n", stack ? stack : "");
    fprintf(out, "  OMP_WAIT_POLICY = 'PASSIVE'\n");
    int limit = omp_get_thread_limit();
    if (limit == INT_MAX) fprintf(out, "  OMP_THREAD_LIMIT = '%u'\n", UINT_MAX);
    else fprintf(out, "  OMP_THREAD_LIMIT = '%d'\n", limit);
    fprintf(out, "  OMP_MAX_ACTIVE_LEVELS = '%d'\n", omp_get_max_active_levels());
    fprintf(out, "  OMP_NUM_TEAMS = '%d'\n", omp_get_max_teams());
    fprintf(out, "  OMP_TEAMS_THREAD_LIMIT = '%d'\n", omp_get_teams_thread_limit());
    fprintf(out, "  OMP_CANCELLATION = '%s'\n", yes_no(omp_get_cancellation()));
    fprintf(out, "  OMP_DEFAULT_DEVICE = '%d'\n", omp_get_default_device());
    fprintf(out, "  OMP_MAX_TASK_PRIORITY = '%d'\n", omp_get_max_task_priority());
    fprintf(out, "  OMP_DISPLAY_AFFINITY = '%s'\n", yes_no(display_affinity));
    fprintf(out, "  OMP_AFFINITY_FORMAT = '%s'\n", format);
    if (verbose) {
        fprintf(out, "  WEFT_THREAD_MODE = '%s'\n", weft_chain_mode() ? "chain" : "local");
        fprintf(out, "  OMP_NUM_PROCS = '%d'\n", omp_get_num_procs());
    }
    fprintf(out, "OPENMP DISPLAY ENVIRONMENT END\n");
}

static int env_true(const char *name) {
    const char *value = getenv(name);
    return value && (!strcasecmp(value, "true") || !strcmp(value, "1"));
}

/* The environment this file reads, once, before main; OMP_DISPLAY_ENV
 * (true or verbose) shows it then. */
__attribute__((constructor)) static void read_environment_at_start(void) {
    const char *format = getenv("OMP_AFFINITY_FORMAT");
    if (format && *format) snprintf(affinity_format, sizeof affinity_format, "%s", format);
    display_affinity = env_true("OMP_DISPLAY_AFFINITY");
    const char *env = getenv("OMP_DISPLAY_ENV");
    if (env && !strcasecmp(env, "verbose")) omp_display_env(1);
    else if (env_true("OMP_DISPLAY_ENV")) omp_display_env(0);
}

/* ---- the `error` directive ---------------------------------------------- */

/* clang's source location: ";file;function;line;column;;". */
struct ident {
    int32_t reserved_1, flags, reserved_2, reserved_3;
    const char *psource;
};

enum { SEVERITY_WARNING = 1, SEVERITY_FATAL = 2 };

/* `#pragma omp error at(execution)`: a warning is printed and the program
 * goes on; a fatal error is printed and ends the program, as natively. */
void __kmpc_error(struct ident *loc, int severity, const char *message) {
    char where[256] = "";
    const char *source = loc ? loc->psource : NULL;
    if (source && *source == ';') {
        const char *file = source + 1, *file_end = strchr(file, ';');
        const char *func_end = file_end ? strchr(file_end + 1, ';') : NULL;
        if (file_end && func_end) {
            int line = atoi(func_end + 1);
            snprintf(where, sizeof where, "%.*s:%d: ", (int)(file_end - file), file, line);
        }
    }
    int fatal = severity == SEVERITY_FATAL;
    fprintf(stderr, "OMP: %s%s: error directive encountered%s%s\n", where,
            fatal ? "fatal error" : "warning", message ? ": " : "", message ? message : "");
    if (fatal) {
        fflush(stdout);
        exit(EXIT_FAILURE);
    }
}

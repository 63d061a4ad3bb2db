/*
 * examples/charlm/corpus.c - reading a corpus straight into vocabulary
 * ids, in as little memory as the ids need.
 *
 *   a file, a directory's regular files sorted by name (skipping *.dat,
 *   *.u8 and symbolic links) concatenated, or standard input ("-");
 *   decoded as strict UTF-8 with Python's universal newlines ("\r\n" and
 *   "\r" read as "\n"), in chunks of 1 MiB
 *
 * Each character becomes an id as it is decoded: ids are first handed out
 * in order of first appearance, and renumbered in the vocabulary's order
 * (sorted code points, as the PyTorch reference's sorted(set(text))) once
 * the whole text is known - or mapped to a checkpoint's vocabulary, with
 * a message naming the first character it lacks. An id takes 1 byte while
 * the text has at most 256 distinct characters, 2 up to 65536, 4 beyond
 * (cl_ids), so a corpus costs about 1 byte of memory per character, where
 * it took 5 (4-byte code points, plus the file's bytes while reading).
 * The array is allocated for the file's size at once and only the pages
 * written count; widening moves ids in place, from the end.
 *
 * A corpus of 32 MiB or more says on stderr what it is reading (a live
 * line on a terminal) and how long it took.
 */
#include "charlm.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CP 0x110000u
#define CHUNK (1 << 20)
#define LOUD_BYTES ((int64_t)32 << 20) /* progress from this size on */

typedef struct reader {
    const char *root;       /* the --data path, for messages */
    int64_t max_bytes, used, total; /* budget; bytes read; expected (-1) */
    uint32_t *prov_of;      /* [MAX_CP]: 1 + provisional id, 0: unseen */
    uint32_t *cp_of;        /* [nprov]: the code point of a provisional id */
    int64_t *first;         /* [nprov]: where it first occurs */
    int64_t nprov, cap_prov;
    cl_ids ids;             /* the text so far, in provisional ids */
    int64_t cap;            /* ids allocated */
    bool progress, loud, tty; /* progress wanted; and shown (large) */
    double t0, last_draw;
} reader;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void show(reader *R, bool force)
{
    if (!R->loud || !R->tty)
        return;
    double t = now_s();
    if (!force && t - R->last_draw < 0.2)
        return;
    R->last_draw = t;
    if (R->total > 0)
        fprintf(stderr, "\r\033[Kreading %s: %.0f of %.0f MB", R->root,
                (double)R->used / 1e6, (double)R->total / 1e6);
    else
        fprintf(stderr, "\r\033[Kreading %s: %.0f MB", R->root,
                (double)R->used / 1e6);
    fflush(stderr);
}

/* room for n more ids */
static void reserve(reader *R, int64_t n)
{
    if (R->ids.n + n <= R->cap)
        return;
    int64_t cap = R->cap * 2 > R->ids.n + n ? R->cap * 2 : R->ids.n + n;
    R->ids.data = tg_xrealloc(R->ids.data, (size_t)cap * (size_t)R->ids.width);
    R->cap = cap;
}

/* 1-byte ids -> 2, 2 -> 4, in place from the end */
static void widen(reader *R)
{
    int w = R->ids.width * 2;
    R->ids.data = tg_xrealloc(R->ids.data, (size_t)(R->cap ? R->cap : 1) * (size_t)w);
    for (int64_t i = R->ids.n - 1; i >= 0; i--) {
        if (w == 2)
            ((uint16_t *)R->ids.data)[i] = ((uint8_t *)R->ids.data)[i];
        else
            ((uint32_t *)R->ids.data)[i] = ((uint16_t *)R->ids.data)[i];
    }
    R->ids.width = w;
}

static uint32_t new_id(reader *R, uint32_t c)
{
    if (R->nprov == R->cap_prov) {
        R->cap_prov = R->cap_prov ? 2 * R->cap_prov : 256;
        R->cp_of = tg_xrealloc(R->cp_of, (size_t)R->cap_prov * sizeof *R->cp_of);
        R->first = tg_xrealloc(R->first, (size_t)R->cap_prov * sizeof *R->first);
    }
    if (R->nprov == ((int64_t)1 << (8 * R->ids.width)))
        widen(R);
    R->cp_of[R->nprov] = c;
    R->first[R->nprov] = R->ids.n;
    R->prov_of[c] = (uint32_t)++R->nprov;
    return (uint32_t)(R->nprov - 1);
}

/* Decodes s[0..n) (bytes off.. of what) into ids. With more to come
 * (!eof), an incomplete sequence or a "\r" at the end is left undecoded:
 * the number of bytes used, or -1 with a message. */
static int64_t decode(reader *R, const unsigned char *s, size_t n, bool eof,
                      int64_t off, const char *what)
{
    reserve(R, (int64_t)n);
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t len = 1;
        if (c >= 0x80 || c == '\r') {
            size_t need = c == '\r' ? 2 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (!eof && i + need > n)
                break; /* decided with the next chunk */
            if (c != '\r') {
                int k = cl_utf8_get(s + i, n - i, &c);
                if (!k)
                    return cli_fail("%s is not UTF-8 text (byte 0x%02X at offset "
                                   "%lld starts no valid character): a binary "
                                   "file?", what, s[i], (long long)(off + (int64_t)i));
                len = (size_t)k;
            } else if (i + 1 < n && s[i + 1] == '\n') {
                i++; /* "\r\n" -> "\n": the \n comes next */
                continue;
            } else {
                c = '\n'; /* "\r" -> "\n" */
            }
        } else if (c == 0) {
            return cli_fail("%s has a NUL byte at offset %lld: a binary file, not "
                           "text", what, (long long)(off + (int64_t)i));
        }
        i += len;
        uint32_t id = R->prov_of[c] ? R->prov_of[c] - 1 : new_id(R, c);
        switch (R->ids.width) {
        case 1: ((uint8_t *)R->ids.data)[R->ids.n++] = (uint8_t)id; break;
        case 2: ((uint16_t *)R->ids.data)[R->ids.n++] = (uint16_t)id; break;
        default: ((uint32_t *)R->ids.data)[R->ids.n++] = id; break;
        }
    }
    return (int64_t)i;
}

static int over_budget(const reader *R)
{
    return cli_fail("%s is larger than the --max-data-mb limit of %lld MiB: "
                   "give a larger --max-data-mb (charlm keeps 1 to 4 bytes per "
                   "character in memory) or less text", R->root,
                   (long long)(R->max_bytes >> 20));
}

/* Reads f (what names it) to its end in chunks. */
static int read_stream(reader *R, FILE *f, const char *what)
{
    unsigned char *buf = tg_xmalloc(CHUNK + 4);
    size_t have = 0; /* undecoded bytes at the start of buf */
    int64_t off = 0; /* offset in the file of buf[0] */
    int rc = 0;
    for (;;) {
        size_t got = fread(buf + have, 1, CHUNK, f);
        if (ferror(f)) {
            rc = cli_fail("cannot read %s: %s", what, strerror(errno));
            break;
        }
        bool eof = got < CHUNK;
        R->used += (int64_t)got;
        if (R->progress && R->used >= LOUD_BYTES)
            R->loud = true; /* standard input turned out large */
        if (R->used > R->max_bytes) {
            rc = over_budget(R);
            break;
        }
        int64_t used = decode(R, buf, have + got, eof, off, what);
        if (used < 0) {
            rc = -1;
            break;
        }
        have = have + got - (size_t)used;
        memmove(buf, buf + used, have);
        off += used;
        show(R, false);
        if (eof)
            break;
    }
    free(buf);
    return rc;
}

static int read_path(reader *R, const char *path)
{
    int64_t size;
    FILE *f = cl_open_regular(path, "", &size);
    if (!f)
        return -1;
    if (size > R->max_bytes - R->used) {
        fclose(f);
        return over_budget(R);
    }
    reserve(R, size); /* one allocation for the whole file */
    int rc = read_stream(R, f, path); /* a file that changed is read as it is */
    fclose(f);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    /* byte order of UTF-8 names = code point order = Python's sorted() */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int read_dir(reader *R, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return cli_fail("cannot read directory %s: %s", dir, strerror(errno));
    char **paths = NULL;
    size_t n = 0;
    struct dirent *e;
    R->total = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            ends_with(e->d_name, ".dat") || ends_with(e->d_name, ".u8"))
            continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = tg_xmalloc(len);
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat st; /* lstat: a link is skipped, not followed */
        if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        R->total += (int64_t)st.st_size;
        paths = tg_xrealloc(paths, (n + 1) * sizeof *paths);
        paths[n++] = p;
    }
    closedir(d);
    if (n)
        qsort(paths, n, sizeof *paths, by_name);
    R->loud = R->progress && R->total >= LOUD_BYTES;
    if (R->loud && !R->tty)
        fprintf(stderr, "reading %s (%zu files, %.0f MB)\n", dir, n,
                (double)R->total / 1e6);
    int rc = 0;
    if (!n)
        rc = cli_fail("directory %s has no text files (charlm reads its regular "
                     "files, skipping *.dat, *.u8 and links)", dir);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_path(R, paths[i]);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return rc;
}

static int by_code_point(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Provisional ids -> vocabulary ids: the vocabulary made (v->n == 0) or
 * checked; -1 with a message naming the first character v lacks. */
static int renumber(reader *R, cl_vocab *v)
{
    if (v->n == 0) {
        v->n = R->nprov;
        v->chars = tg_xmalloc((size_t)v->n * sizeof *v->chars);
        memcpy(v->chars, R->cp_of, (size_t)v->n * sizeof *v->chars);
        qsort(v->chars, (size_t)v->n, sizeof *v->chars, by_code_point);
    }
    uint32_t *to = tg_xmalloc((size_t)R->nprov * sizeof *to);
    int64_t missing = -1;
    for (int64_t k = 0; k < R->nprov; k++) {
        int64_t id = cl_vocab_id(v, R->cp_of[k]);
        if (id < 0 && (missing < 0 || R->first[k] < R->first[missing]))
            missing = k;
        to[k] = (uint32_t)id;
    }
    if (missing >= 0) {
        char name[32];
        cl_char_name(R->cp_of[missing], name, sizeof name);
        free(to);
        return cli_fail("%s: character %s (character %lld) is not in the "
                       "model's vocabulary of %lld characters", R->root, name,
                       (long long)R->first[missing], (long long)v->n);
    }
    int64_t n = R->ids.n;
    switch (R->ids.width) {
    case 1: {
        uint8_t *p = R->ids.data;
        for (int64_t i = 0; i < n; i++)
            p[i] = (uint8_t)to[p[i]];
        break;
    }
    case 2: {
        uint16_t *p = R->ids.data;
        for (int64_t i = 0; i < n; i++)
            p[i] = (uint16_t)to[p[i]];
        break;
    }
    default: {
        uint32_t *p = R->ids.data;
        for (int64_t i = 0; i < n; i++)
            p[i] = to[p[i]];
    }
    }
    free(to);
    return 0;
}

int cl_corpus_read(const char *path, int64_t max_mb, bool progress,
                   cl_vocab *v, cl_ids *ids)
{
    bool built = v->n == 0;
    reader R = {.root = path, .total = -1, .t0 = now_s(), .progress = progress,
                .ids = {.width = 1}};
    R.max_bytes = max_mb > INT64_MAX >> 20 ? INT64_MAX : max_mb << 20;
    *ids = (cl_ids){0};
    bool in = !strcmp(path, "-");
    struct stat st;
    if (!in && stat(path, &st) < 0)
        return cli_fail("cannot read %s: %s", path, strerror(errno));
    bool dir = !in && S_ISDIR(st.st_mode);
    if (!in && !dir)
        R.total = (int64_t)st.st_size;
    R.tty = isatty(2);
    R.prov_of = tg_xcalloc(MAX_CP, sizeof *R.prov_of);
    int rc;
    if (in) {
        if (isatty(0) && progress)
            fprintf(stderr, "reading the corpus from standard input (end it "
                    "with Ctrl-D)\n");
        R.root = "standard input";
        rc = read_stream(&R, stdin, "standard input");
    } else {
        if (dir) { /* the total is known once the directory is listed */
            rc = read_dir(&R, path);
        } else {
            R.loud = progress && R.total >= LOUD_BYTES;
            if (R.loud && !R.tty)
                fprintf(stderr, "reading %s (%.0f MB)\n", path,
                        (double)R.total / 1e6);
            rc = read_path(&R, path);
        }
    }
    if (rc == 0 && R.ids.n == 0)
        rc = cli_fail("%s is empty: there is no text to learn from", R.root);
    if (rc == 0)
        rc = renumber(&R, v);
    if (rc == 0 && R.ids.n < R.cap) /* give back what multi-byte characters
                                       and line ends left */
        R.ids.data = tg_xrealloc(R.ids.data, (size_t)R.ids.n * (size_t)R.ids.width);
    if (R.loud) {
        if (R.tty)
            fputs("\r\033[K", stderr);
        if (rc == 0)
            fprintf(stderr, "read %s: %.0f MB, %lld characters (%lld distinct, "
                    "%d byte%s each in memory) in %.1f s\n", R.root,
                    (double)R.used / 1e6, (long long)R.ids.n, (long long)R.nprov,
                    R.ids.width, R.ids.width > 1 ? "s" : "", now_s() - R.t0);
    }
    free(R.prov_of);
    free(R.cp_of);
    free(R.first);
    if (rc < 0) {
        free(R.ids.data);
        if (built)
            cl_vocab_free(v);
        return -1;
    }
    *ids = R.ids;
    return 0;
}

void cl_ids_free(cl_ids *ids)
{
    free(ids->data);
    *ids = (cl_ids){0};
}

/*
 * examples/charlm/data.c - text, vocabulary and the [T, B] token blocks a
 * training step eats, exactly as the PyTorch reference makes them (the
 * corpus itself is read by corpus.c):
 *
 *   UTF-8         strict decoding (like Python's "utf-8" codec): overlong
 *                 forms, surrogates, code points past U+10FFFF and
 *                 truncated sequences are errors, and so is a NUL byte -
 *                 either means the input is not text
 *   vocabulary    sorted(set(text)): the code points that occur, in order
 *   split         the last max(int(n * val_frac), T * B + 1) characters
 *                 are held out for validation
 *   streams       a part of n ids becomes B streams of n / B: stream b is
 *                 ids[b * n/B : (b + 1) * n/B]; cl_streams_rows gathers
 *                 rows [pos, pos + T) of all B streams, one step's input
 *
 * The streams are views into the corpus's ids (1, 2 or 4 bytes each,
 * cl_ids), never copies. Only regular files are opened (a FIFO or
 * /dev/zero would block or never end).
 */
#include "charlm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- UTF-8 -------------------------------------------------------------- */

/* Decodes the sequence at s[0..n): its length (1-4) and *cp, or 0 if it
 * is not valid UTF-8. */
int cl_utf8_get(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int len;
    uint32_t c, lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (b >= 0xC2 && b <= 0xDF)
        len = 2, c = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        if (b == 0xED)
            hi = 0x9F; /* surrogates U+D800..DFFF */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07;
        if (b == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        if (b == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else
        return 0;
    if ((size_t)len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3F);
    }
    *cp = c;
    return len;
}

int cl_utf8_put(uint32_t c, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Appends the code points of bytes s[0..n) to t (grown as needed), with
 * universal newlines. -1 with a message naming what and the offset. */
static int decode_append(const unsigned char *s, size_t n, cl_text *t,
                         int64_t *cap, const char *what)
{
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int len = cl_utf8_get(s + i, n - i, &c);
        if (!len)
            return cli_fail("%s is not UTF-8 text (byte 0x%02X at offset %zu "
                           "starts no valid character): a binary file?", what,
                           s[i], i);
        if (c == 0)
            return cli_fail("%s has a NUL byte at offset %zu: a binary file, "
                           "not text", what, i);
        i += (size_t)len;
        if (c == '\r') { /* "\r\n" -> "\n" (the \n comes next), "\r" -> "\n" */
            if (i < n && s[i] == '\n')
                continue;
            c = '\n';
        }
        if (t->n == *cap) {
            *cap = *cap ? 2 * *cap : 4096;
            t->cp = tg_xrealloc(t->cp, (size_t)*cap * sizeof *t->cp);
        }
        t->cp[t->n++] = c;
    }
    return 0;
}

int cl_utf8_decode(const char *s, cl_text *t, const char *what)
{
    int64_t cap = 0;
    *t = (cl_text){0};
    if (decode_append((const unsigned char *)s, strlen(s), t, &cap, what) < 0) {
        cl_text_free(t);
        return -1;
    }
    return 0;
}

/* ---- files -------------------------------------------------------------- */

FILE *cl_open_regular(const char *path, const char *what, int64_t *size)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        cli_fail("cannot read %s%s: %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        cli_fail("cannot read %s%s: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode))
            cli_fail("%s%s is a directory, not a file", what, path);
        else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ||
                 S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode))
            cli_fail("%s%s is not a regular file (a %s): charlm reads only "
                    "regular files", what, path,
                    S_ISFIFO(st.st_mode) ? "FIFO" : S_ISSOCK(st.st_mode)
                    ? "socket" : "device");
        else
            cli_fail("%s%s is not a regular file", what, path);
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *f = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0
                  ? NULL : fdopen(fd, "rb");
    if (!f) {
        cli_fail("cannot read %s%s: %s", what, path, strerror(errno));
        close(fd);
        return NULL;
    }
    *size = (int64_t)st.st_size;
    return f;
}

void cl_text_free(cl_text *t)
{
    free(t->cp);
    *t = (cl_text){0};
}

/* ---- vocabulary --------------------------------------------------------- */

char *cl_vocab_utf8(const cl_vocab *v)
{
    char *s = tg_xmalloc((size_t)v->n * 4 + 1), *p = s;
    for (int64_t i = 0; i < v->n; i++)
        p += cl_utf8_put(v->chars[i], p);
    *p = 0;
    return s;
}

int cl_vocab_parse(const char *utf8, cl_vocab *v)
{
    cl_text t;
    *v = (cl_vocab){0};
    /* no universal newlines here: a stored "\r" would be refused below
     * anyway, as the corpus reader never produces one */
    if (cl_utf8_decode(utf8, &t, "the vocabulary") < 0)
        return -1;
    for (int64_t i = 1; i < t.n; i++)
        if (t.cp[i] <= t.cp[i - 1]) {
            cl_text_free(&t);
            return cli_fail("the vocabulary is not a sorted set of characters");
        }
    if (t.n == 0) {
        cl_text_free(&t);
        return cli_fail("the vocabulary is empty");
    }
    v->chars = t.cp;
    v->n = t.n;
    return 0;
}

void cl_vocab_free(cl_vocab *v)
{
    free(v->chars);
    *v = (cl_vocab){0};
}

int64_t cl_vocab_id(const cl_vocab *v, uint32_t c)
{
    int64_t lo = 0, hi = v->n; /* binary search in the sorted set */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v->chars[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->n && v->chars[lo] == c ? lo : -1;
}

void cl_char_name(uint32_t c, char *buf, size_t cap)
{
    char glyph[8] = "";
    if (c >= 0x20 && c != 0x7F && !(c >= 0x80 && c < 0xA0)) /* printable */
        glyph[cl_utf8_put(c, glyph)] = 0;
    if (glyph[0])
        snprintf(buf, cap, "'%s' (U+%04X)", glyph, (unsigned)c);
    else
        snprintf(buf, cap, "U+%04X", (unsigned)c);
}

/* FNV-1a over each id as 8 little-endian bytes, as it was when ids were
 * int64: the zero high bytes only multiply by the prime, so an id below
 * 256 costs one multiplication by P^8, below 65536 two. */
uint64_t cl_ids_hash(const cl_ids *ids)
{
    const uint64_t P = 1099511628211ull;
    uint64_t h = 1469598103934665603ull, P4 = P * P * P * P, P6 = P4 * P * P,
             P7 = P6 * P, P8 = P4 * P4;
    for (int64_t i = 0; i < ids->n; i++) {
        uint32_t id = cl_ids_get(ids, i);
        if (id < 256) {
            h = (h ^ id) * P8;
        } else if (id < 65536) {
            h = ((h ^ (id & 0xFF)) * P ^ (id >> 8)) * P7;
        } else {
            for (int k = 0; k < 4; k++)
                h = (h ^ ((id >> (8 * k)) & 0xFF)) * P;
            h *= P4;
        }
    }
    return h;
}

/* ---- split and streams -------------------------------------------------- */

static void make_streams(const cl_ids *ids, int64_t start, int64_t n,
                         int64_t B, cl_streams *s)
{
    s->ids = (const char *)ids->data + start * ids->width;
    s->width = ids->width;
    s->B = B;
    s->n = n / B;
}

void cl_streams_rows(const cl_streams *s, int64_t pos, int64_t len,
                     int64_t *out)
{
    TG_ASSERT(pos >= 0 && len >= 0 && len <= s->n - pos);
    for (int64_t b = 0; b < s->B; b++) {
        int64_t at = b * s->n + pos;
        switch (s->width) {
        case 1:
            for (int64_t i = 0; i < len; i++)
                out[i * s->B + b] = ((const uint8_t *)s->ids)[at + i];
            break;
        case 2:
            for (int64_t i = 0; i < len; i++)
                out[i * s->B + b] = ((const uint16_t *)s->ids)[at + i];
            break;
        default:
            for (int64_t i = 0; i < len; i++)
                out[i * s->B + b] = ((const uint32_t *)s->ids)[at + i];
        }
    }
}

int cl_split(const cl_ids *ids, const cl_config *c, cl_streams *train,
             cl_streams *val, const char *what)
{
    int64_t T = c->seq, B = c->batch, n = ids->n;
    int64_t n_val = (int64_t)((double)n * c->val_frac); /* Python's int() */
    if (n_val < T * B + 1)
        n_val = T * B + 1;
    *train = *val = (cl_streams){0};
    if (n_val >= n)
        return cli_fail("%s is too small: %lld characters, and validation alone "
                       "takes %lld (--seq x --batch + 1, or --val-frac of the "
                       "text); use more text or a smaller --seq or --batch",
                       what, (long long)n, (long long)n_val);
    int64_t n_train = n - n_val;
    if (n_train / B < T + 1)
        return cli_fail("%s is too small for one training batch: the %lld "
                       "characters left for training make --batch %lld "
                       "streams of %lld, and a step needs --seq + 1 = %lld; "
                       "use more text or a smaller --seq or --batch", what,
                       (long long)n_train, (long long)B,
                       (long long)(n_train / B), (long long)(T + 1));
    if (n_val / B < 2)
        return cli_fail("%s: the %lld held-out characters make --batch %lld "
                       "validation streams of %lld, too short to score; use a "
                       "larger --val-frac or --seq", what, (long long)n_val,
                       (long long)B, (long long)(n_val / B));
    make_streams(ids, 0, n_train, B, train);
    make_streams(ids, n_train, n_val, B, val);
    return 0;
}

int cl_streams_whole(const cl_ids *ids, int64_t B, cl_streams *s,
                     const char *what)
{
    *s = (cl_streams){0};
    if (ids->n / B < 2)
        return cli_fail("%s is too short to score: %lld characters make the "
                       "model's %lld streams of %lld, and a stream needs 2",
                       what, (long long)ids->n, (long long)B,
                       (long long)(ids->n / B));
    make_streams(ids, 0, ids->n, B, s);
    return 0;
}

void cl_streams_free(cl_streams *s)
{
    free(s->owned);
    *s = (cl_streams){0};
}

#include "proto.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void reserve(struct proto_buf *b, size_t n)
{
	if (b->err || b->len + n <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p) {
		b->err = 1;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void put(struct proto_buf *b, const void *p, size_t n)
{
	if (!n)		/* an empty buffer has no memory to copy into */
		return;
	reserve(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_le(struct proto_buf *b, uint64_t v, int n)
{
	uint8_t tmp[8];
	for (int i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	put(b, tmp, (size_t)n);
}

void proto_put_u8(struct proto_buf *b, uint8_t v) { put_le(b, v, 1); }
void proto_put_u32(struct proto_buf *b, uint32_t v) { put_le(b, v, 4); }
void proto_put_u64(struct proto_buf *b, uint64_t v) { put_le(b, v, 8); }

void proto_put_bytes(struct proto_buf *b, const void *p, uint32_t n)
{
	proto_put_u32(b, n);
	if (n)
		put(b, p, n);
}

void proto_put_raw(struct proto_buf *b, const void *p, size_t n)
{
	put(b, p, n);
}

void proto_put_str(struct proto_buf *b, const char *s)
{
	proto_put_bytes(b, s, (uint32_t)strlen(s));
}

void proto_buf_free(struct proto_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static uint64_t get_le(struct proto_reader *r, int n)
{
	if (r->err || r->len - r->off < (size_t)n) {
		r->err = 1;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)r->p[r->off + i] << (8 * i);
	r->off += (size_t)n;
	return v;
}

uint8_t proto_get_u8(struct proto_reader *r) { return (uint8_t)get_le(r, 1); }
uint32_t proto_get_u32(struct proto_reader *r) { return (uint32_t)get_le(r, 4); }
uint64_t proto_get_u64(struct proto_reader *r) { return get_le(r, 8); }

const uint8_t *proto_get_bytes(struct proto_reader *r, uint32_t *n)
{
	*n = proto_get_u32(r);
	if (r->err || r->len - r->off < *n) {
		r->err = 1;
		*n = 0;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += *n;
	return p;
}

void proto_get_str(struct proto_reader *r, char *dst, size_t cap)
{
	uint32_t n;
	const uint8_t *p = proto_get_bytes(r, &n);
	dst[0] = 0;
	if (!p)
		return;
	if (n >= cap || memchr(p, 0, n)) {
		r->err = 1;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *s = p;
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	uint8_t *d = p;
	while (n) {
		ssize_t r = read(fd, d, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			errno = 0;
		if (r <= 0)
			return -1;
		d += r;
		n -= (size_t)r;
	}
	return 0;
}

int proto_send(int fd, uint16_t type, const struct proto_buf *payload)
{
	struct proto_buf h = {0};
	uint8_t raw[12];
	uint32_t len = payload ? (uint32_t)payload->len : 0;
	if (payload && payload->err) {
		errno = ENOMEM;
		return -1;
	}
	h.p = raw;
	h.cap = sizeof raw;
	proto_put_u32(&h, RW_MAGIC);
	put_le(&h, RW_VERSION, 2);
	put_le(&h, type, 2);
	proto_put_u32(&h, len);
	if (write_all(fd, raw, sizeof raw) < 0)
		return -1;
	return len ? write_all(fd, payload->p, len) : 0;
}

int proto_recv(int fd, uint16_t *type, uint8_t **payload, uint32_t *len)
{
	uint8_t raw[12];
	*payload = NULL;
	if (read_all(fd, raw, sizeof raw) < 0)
		return -1;
	struct proto_reader r = {raw, sizeof raw, 0, 0};
	uint32_t magic = proto_get_u32(&r);
	uint16_t version = (uint16_t)get_le(&r, 2);
	*type = (uint16_t)get_le(&r, 2);
	*len = proto_get_u32(&r);
	if (magic != RW_MAGIC || version != RW_VERSION || *len > RW_MAX_PAYLOAD) {
		errno = EPROTO;
		return -1;
	}
	*payload = malloc(*len ? *len : 1);
	if (!*payload)
		return -1;
	if (read_all(fd, *payload, *len) < 0) {
		int e = errno;
		free(*payload);
		*payload = NULL;
		errno = e ? e : EPROTO;
		return -1;
	}
	return 0;
}

/* Fuzz target: the channel (src/proto/proto.c). Both ends read what the
 * other wrote: frames from the socket (proto_recv) and values from a payload
 * (proto_get_*). The input is used three ways:
 *
 *  - as a payload read by a script taken from the payload itself: each
 *    step reads an opcode byte, then the value it names. The reader must
 *    stay inside the payload, hand out only pointers into it, terminate
 *    every string it copies, and once in error stay there;
 *  - as the byte stream of a channel: every frame received is checked and
 *    its payload read by the same script;
 *  - as a payload sent and received again, which must arrive unchanged. */
#define _GNU_SOURCE
#include "fuzz.h"
#include "proto/proto.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile uint8_t proto_sink;

static void proto_read_str(struct proto_reader *r)
{
	/* The destination is exactly cap bytes, so ASan sees an overrun. */
	size_t cap = 1 + proto_get_u8(r) % 64;
	char *dst = malloc(cap);
	FUZZ_CHECK(dst);
	memset(dst, 'x', cap);
	size_t off = r->off;
	int err = r->err;
	proto_get_str(r, dst, cap);
	FUZZ_CHECK(memchr(dst, 0, cap));
	if (!r->err)
		FUZZ_CHECK(r->off == off + 4 + strlen(dst));
	if (err)
		FUZZ_CHECK(!dst[0] && r->off == off);
	free(dst);
}

static void proto_read_step(struct proto_reader *r, uint8_t op)
{
	uint32_t n = 0;
	const uint8_t *p;
	switch (op % 5) {
	case 0: proto_sink ^= proto_get_u8(r); break;
	case 1: proto_sink ^= (uint8_t)proto_get_u32(r); break;
	case 2: proto_sink ^= (uint8_t)proto_get_u64(r); break;
	case 3:
		p = proto_get_bytes(r, &n);
		if (!p) {
			FUZZ_CHECK(r->err && n == 0);
			break;
		}
		FUZZ_CHECK(p >= r->p && (size_t)(p - r->p) + n <= r->len);
		FUZZ_CHECK(p + n == r->p + r->off);
		if (n)
			proto_sink ^= p[0] ^ p[n - 1];
		break;
	case 4: proto_read_str(r); break;
	}
}

/* Reads until the end or an error; an error must be sticky and freeze the
 * position. */
static void proto_read_script(const uint8_t *p, size_t len)
{
	struct proto_reader r = {p, len, 0, 0};
	for (int steps = 0; steps < 4096 && !r.err; steps++) {
		size_t before = r.off;
		uint8_t op = proto_get_u8(&r);
		if (r.err)
			break;
		proto_read_step(&r, op);
		FUZZ_CHECK(r.off <= r.len && r.off > before);
	}
	if (!r.err)
		return;
	size_t off = r.off;
	FUZZ_CHECK(proto_get_u64(&r) == 0 && proto_get_u8(&r) == 0 && r.off == off && r.err);
}

/* A pipe holding data, its write end closed: a peer that wrote it all and
 * went away. Returns the read end, or -1. */
static int proto_channel(const void *data, size_t size)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
	const uint8_t *p = data;
	while (size) {
		ssize_t w = write(fds[1], p, size);
		if (w <= 0)
			break;	/* full: the rest is cut off, as by a peer that died */
		p += w;
		size -= (size_t)w;
	}
	close(fds[1]);
	return fds[0];
}

static int proto_frames(const uint8_t *data, size_t size)
{
	int fd = proto_channel(data, size), nframes = 0;
	FUZZ_CHECK(fd >= 0);
	for (;;) {
		uint16_t type;
		uint8_t *payload = (uint8_t *)1;
		uint32_t len = 0;
		if (proto_recv(fd, &type, &payload, &len) < 0) {
			FUZZ_CHECK(!payload);
			break;
		}
		FUZZ_CHECK(payload && len <= RW_MAX_PAYLOAD);
		proto_read_script(payload, len);
		free(payload);
		nframes++;
	}
	close(fd);
	return nframes;
}

/* What proto_send writes, proto_recv reads back unchanged. */
static void proto_round_trip(const uint8_t *data, size_t size)
{
	int fds[2];
	FUZZ_CHECK(pipe(fds) == 0);
	if (size > 60000)
		size = 60000;	/* within a default pipe, as nothing reads yet */
	struct proto_buf b = {0};
	proto_put_raw(&b, data, size);
	uint16_t type = size ? data[0] : 0;
	FUZZ_CHECK(proto_send(fds[1], type, &b) == 0);
	close(fds[1]);
	uint16_t rtype;
	uint8_t *payload;
	uint32_t len;
	FUZZ_CHECK(proto_recv(fds[0], &rtype, &payload, &len) == 0);
	FUZZ_CHECK(rtype == type && len == size && (!size || !memcmp(payload, data, size)));
	free(payload);
	proto_buf_free(&b);
	close(fds[0]);
}

static int fuzz_proto(const uint8_t *data, size_t size)
{
	proto_read_script(data, size);
	int nframes = proto_frames(data, size);
	proto_round_trip(data, size);
	return nframes > 0;
}

RW_FUZZ_ENTRY(fuzz_proto)

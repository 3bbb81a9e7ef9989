/* The driver <-> agent channel: framed binary messages over a Unix stream
 * socket. Shared by both sides, so it uses only libc and never exits.
 *
 * Frame: u32 magic, u16 version, u16 type, u32 payload length, payload.
 * Integers are little-endian (both ends are the same machine, but the
 * encoding is explicit so a foreign peer is detected, not misread). The
 * reader checks every length against what is left: a malformed message
 * sets the reader's error flag and is rejected as a whole. */
#ifndef RW_PROTO_H
#define RW_PROTO_H
#include <stddef.h>
#include <stdint.h>

#define RW_MAGIC 0x52495752u	/* "RWIR" */
#define RW_VERSION 4
#define RW_MAX_PAYLOAD (256u << 20)

enum proto_msg {
	RW_MSG_ERROR = 1,	/* str message */
	RW_MSG_HELLO,		/* driver: nothing; agent: the process, see agent.c */
	RW_MSG_LOOKUP,		/* names to find with dlsym */
	RW_MSG_ALLOC,		/* memory near a module for a patch */
	RW_MSG_APPLY,		/* the patch: bytes, jumps, symbols */
	RW_MSG_OK,		/* reply payload depends on the request */
	RW_MSG_GO,		/* driver: nothing; the session's patches are in: run on */
	RW_MSG_STATUS,		/* driver: nothing; agent: its patches (`rewire status`) */
	RW_MSG_REVERT,		/* take back the patches after one (`rewire revert`) */
};

/* Registry kinds: what a symbol defined by a patch is. */
enum proto_kind { RW_KIND_FUNC = 1, RW_KIND_DATA, RW_KIND_TLS };

/* Lookup results. */
enum proto_found { RW_FOUND_NONE = 0, RW_FOUND_ADDR, RW_FOUND_TLS };

/* Segment protections in APPLY; never writable and executable at once. */
enum proto_prot { RW_PROT_R = 1, RW_PROT_RW, RW_PROT_RX };

struct proto_buf {
	uint8_t *p;
	size_t len, cap;
	int err;		/* allocation failed */
};

struct proto_reader {
	const uint8_t *p;
	size_t len, off;
	int err;		/* read past the end or a bad string */
};

void proto_put_u8(struct proto_buf *b, uint8_t v);
void proto_put_u32(struct proto_buf *b, uint32_t v);
void proto_put_u64(struct proto_buf *b, uint64_t v);
void proto_put_bytes(struct proto_buf *b, const void *p, uint32_t n);	/* u32 n, bytes */
void proto_put_str(struct proto_buf *b, const char *s);		/* u32 n, bytes, no NUL */
void proto_put_raw(struct proto_buf *b, const void *p, size_t n);	/* bytes as they are */
void proto_buf_free(struct proto_buf *b);

uint8_t proto_get_u8(struct proto_reader *r);
uint32_t proto_get_u32(struct proto_reader *r);
uint64_t proto_get_u64(struct proto_reader *r);
/* Points into the message; *n is its length. NULL (and err) past the end. */
const uint8_t *proto_get_bytes(struct proto_reader *r, uint32_t *n);
/* Copies into dst (NUL-terminated); a string longer than cap-1 or holding a
 * NUL is an error. */
void proto_get_str(struct proto_reader *r, char *dst, size_t cap);

/* Send one frame; 0 or -1 with errno. */
int proto_send(int fd, uint16_t type, const struct proto_buf *payload);
/* Receive one frame into *payload (malloc'd, caller frees). Returns 0, or
 * -1 with errno (EPROTO: bad magic, version or length; 0 errno: peer closed). */
int proto_recv(int fd, uint16_t *type, uint8_t **payload, uint32_t *len);

#endif

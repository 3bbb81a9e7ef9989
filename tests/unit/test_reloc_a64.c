/* The aarch64 relocations (src/arch/aarch64.c) against GNU ld: an object
 * with every kind of field compilers emit is linked by aarch64-linux-gnu-ld
 * at fixed addresses, and rewire's relocation of the same object, with
 * the addresses ld chose, must give the bytes ld wrote. */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arch/jump.h"
#include "link/linker.h"
#include "util.h"

static int failed;

static void check(int ok, const char *name, const char *why)
{
	if (ok)
		printf("PASS reloc-a64: %s\n", name);
	else
		printf("FAIL reloc-a64: %s: %s\n", name, why), failed = 1;
}

/* Relocations ld does not rewrite (no GOT, no relaxation), of each field. */
static const char code[] =
	"\t.text\n\t.globl _start\n_start:\n"
	"\tbl far_func\n\tb far_func\n\tb.ne far_func\n\tcbz x0, far_func\n\ttbz x0, #3, far_func\n"
	"\tadr x1, data_sym\n\tadrp x2, data_sym\n\tadd x2, x2, :lo12:data_sym\n"
	"\tldrb w3, [x2, :lo12:data_sym]\n\tldrh w3, [x2, :lo12:data_sym+2]\n"
	"\tldr w3, [x2, :lo12:data_sym+4]\n\tldr x3, [x2, :lo12:data_sym+8]\n"
	"\tldr q3, [x2, :lo12:data_sym+16]\n\tldr x4, lit_sym\n"
	"\tadrp x5, far_data+0x1234\n\tadd x5, x5, :lo12:far_data+0x1234\n"
	"\tmrs x6, tpidr_el0\n\tadd x6, x6, #:tprel_hi12:tv, lsl #12\n"
	"\tadd x6, x6, #:tprel_lo12_nc:tv\n\tldr w7, [x6, #:tprel_lo12_nc:tv2]\n"
	"\tmovz x8, #:tprel_g1:tv\n\tmovk x8, #:tprel_g0_nc:tv\n\tret\n"
	"\t.data\n\t.quad data_sym + 8\n\t.word data_sym\n\t.word data_sym - .\n\t.quad far_data - .\n"
	"\t.hword data_sym - . + 2\n";
static const char defs[] =
	"\t.text\n\t.globl far_func\n\t.p2align 4\n\t.skip 0x1000\nfar_func:\n\tret\n"
	"\t.data\n\t.globl data_sym, lit_sym\n\t.p2align 4\ndata_sym:\n\t.skip 64\nlit_sym:\n\t.quad 7\n"
	"\t.section .tbss,\"awT\",@nobits\n\t.globl tv, tv2\n\t.p2align 3\n\t.skip 24\ntv:\n\t.skip 8\ntv2:\n\t.skip 4\n"
	"\t.bss\n\t.globl far_data\n\t.p2align 12\nfar_data:\n\t.skip 0x10000\n";

static int sh(const char *dir, const char *cmd)
{
	char full[2048];
	snprintf(full, sizeof full, "cd %s && %s >>log 2>&1", dir, cmd);
	return system(full);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static const struct elf_section *section_named(const struct elf_image *img, const char *name)
{
	for (size_t i = 1; i < img->nsections; i++)
		if (!strcmp(img->sections[i].name, name))
			return &img->sections[i];
	return NULL;
}

/* Offset of a thread-local from the thread pointer: the TCB's 16 bytes
 * (the TLS segment here is 8-aligned: no more padding), then the
 * symbol's value, which in a linked program is its offset in the segment
 * (TLS variant I). */
static int64_t tpoff(const struct elf_symbol *s)
{
	return (int64_t)(16 + s->value);
}

static void relocate_section(const char *dir, struct elf_object *o, const struct elf_image *img,
			     const char *secname)
{
	const struct elf_section *out = section_named(img, secname);
	uint16_t si = 0;
	for (size_t i = 1; i < o->nsections; i++)
		if (!strcmp(o->sections[i].name, secname))
			si = (uint16_t)i;
	char name[128];
	snprintf(name, sizeof name, "%s relocated as ld does", secname);
	if (!out || !si)
		return check(0, name, "section missing");
	const struct elf_section *in = &o->sections[si];
	uint8_t *bytes = rw_malloc(in->size + 8);
	memcpy(bytes, in->data, in->size);
	char why[512] = "";
	size_t n = 0;
	for (size_t i = 0; i < in->nrelas && !why[0]; i++) {
		const struct elf_rela *r = &in->relas[i];
		const struct elf_symbol *s = &o->symbols[r->sym];
		const struct elf_symbol *t = elf_image_find(img, s->name, NULL);
		struct reloc_kind k;
		arch_reloc_kind(r->type, &k);
		if (!t) {
			snprintf(why, sizeof why, "%s: no %s in the linked program", k.name, s->name);
			break;
		}
		struct relval v = {.S = t->value, .P = out->addr + r->offset, .A = r->addend};
		if (k.tls)
			v.tpoff = tpoff(t);
		if (arch_apply(r->type, bytes + r->offset, &v) < 0)
			snprintf(why, sizeof why, "%s at %#llx: %s", k.name, (unsigned long long)r->offset,
				 rw_error());
		else if (memcmp(bytes + r->offset, out->data + r->offset, (size_t)arch_field_size(r->type)))
			snprintf(why, sizeof why, "%s at %#llx: rewire wrote %08x, ld %08x", k.name,
				 (unsigned long long)r->offset, *(uint32_t *)(bytes + r->offset),
				 *(const uint32_t *)(out->data + r->offset));
		n++;
	}
	if (!why[0] && memcmp(bytes, out->data, in->size))
		snprintf(why, sizeof why, "the bytes differ outside the relocations");
	if (!why[0] && n < 5)
		snprintf(why, sizeof why, "only %zu relocations", n);
	check(!why[0], name, why);
	free(bytes);
	(void)dir;
}

/* The entry jumps the agent writes (arch/jump.h) against the assembler
 * and ld: b; adrp x16 + add + br x16 within 4 GiB; ldr x16 + br x16 +
 * the address beyond. Each from a fixed address to an absolute target. */
static void check_jumps(const char *dir)
{
	static const struct { uint64_t at, to; int len; } cases[] = {
		{0x100000000ull, 0x100001000ull, A64_JUMP_SIZE},
		{0x100000000ull, 0x100000000ull - (128ull << 20), A64_JUMP_SIZE},
		{0x100000000ull, 0x100000000ull + (200ull << 20) + 0x124, A64_MID_JUMP_SIZE},
		{0x100000000ull, 0x100000000ull - (1ull << 30) + 0x5678, A64_MID_JUMP_SIZE},
		{0x100000000ull, 0x100000000ull + (4ull << 30) - 0x2000, A64_MID_JUMP_SIZE},
		{0x100000000ull, 0x100000000ull + (4ull << 30) + 0x1000, A64_FAR_JUMP_SIZE},
		{0x100000000ull, 0x7f0012345678ull, A64_FAR_JUMP_SIZE},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t at = cases[i].at, to = cases[i].to;
		char name[160], cmd[600], path[512], why[200];
		uint8_t want[16] = {0}, got[16] = {0};
		int len = a64_jump_size(at, to);
		snprintf(name, sizeof name, "entry jump from %#llx to %#llx (%d bytes)",
			 (unsigned long long)at, (unsigned long long)to, cases[i].len);
		put(dir, "j.s", cases[i].len == A64_JUMP_SIZE ? "\t.text\n\t.globl _start\n_start:\n\tb T\n" :
			cases[i].len == A64_MID_JUMP_SIZE ?
			"\t.text\n\t.globl _start\n_start:\n\tadrp x16, T\n\tadd x16, x16, :lo12:T\n\tbr x16\n" :
			"\t.text\n\t.globl _start\n_start:\n\tldr x16, 1f\n\tbr x16\n1:\t.quad T\n");
		snprintf(cmd, sizeof cmd, "rm -f j.bin && aarch64-linux-gnu-as j.s -o j.o && "
			 "aarch64-linux-gnu-ld -static -Ttext=%#llx --defsym T=%#llx j.o -o j && "
			 "aarch64-linux-gnu-objcopy -O binary -j .text j j.bin",
			 (unsigned long long)at, (unsigned long long)to);
		snprintf(path, sizeof path, "%s/j.bin", dir);
		FILE *f = sh(dir, cmd) == 0 ? fopen(path, "rb") : NULL;
		size_t n = f ? fread(want, 1, sizeof want, f) : 0;
		if (f)
			fclose(f);
		if (n != (size_t)cases[i].len) {
			check(0, name, "the assembler and ld did not make it (see log)");
			continue;
		}
		int rc = a64_encode_jump(got, at, to, len);
		snprintf(why, sizeof why, "rewire chose %d bytes%s", len,
			 rc < 0 ? ", and could not encode it" : ", other bytes than ld's");
		check(len == cases[i].len && rc == 0 && !memcmp(got, want, 16), name, why);
	}
}

int main(void)
{
	char dir[] = "/tmp/rewire-reloc-a64.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	put(dir, "t.s", code);
	put(dir, "d.s", defs);
	if (sh(dir, "aarch64-linux-gnu-as t.s -o t.o && aarch64-linux-gnu-as d.s -o d.o && "
		    "aarch64-linux-gnu-ld -static -Ttext=0x400000 -Tdata=0x480000 t.o d.o -o t") != 0) {
		printf("SKIP reloc-a64: no aarch64 binutils (gcc-aarch64-linux-gnu)\n");
		return 0;
	}
	char path[512];
	struct elf_object o;
	struct elf_image img;
	snprintf(path, sizeof path, "%s/t.o", dir);
	int rc = elf_object_open(&o, path);
	snprintf(path, sizeof path, "%s/t", dir);
	if (rc < 0 || elf_image_open(&img, path) < 0) {
		check(0, "read the object and the program", rw_error());
		return 1;
	}
	arch_select(EM_AARCH64);
	check_jumps(dir);
	relocate_section(dir, &o, &img, ".text");
	relocate_section(dir, &o, &img, ".data");
	elf_image_close(&img);
	elf_object_close(&o);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd)) {}
	return failed;
}

/* The layout of pages-<id>.fpz shared by its writer (pagestore_write.c) and
 * reader (pagestore_read.c): header, chunk records, footer, little-endian
 * fields. FORMAT.md describes it. Internal to images/. */
#ifndef FP_PAGESTORE_FMT_H
#define FP_PAGESTORE_FMT_H

#include <stdint.h>
#include <string.h>

#include "images/pagestore.h"

#define HDR_SIZE 64
#define REC_SIZE 40
#define FTR_SIZE 48
#define HDR_MAGIC "FPZPAGE1"
#define FTR_MAGIC "FPZEND01"
#define VERSION 1
#define CODEC_STORED 0
#define CODEC_ZSTD 1

typedef struct chunk_rec {
	uint64_t first_page, offset;
	uint32_t nr_pages, csize, usize, codec;
	uint64_t hash;
} chunk_rec;

static inline void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static inline void make_header(uint8_t h[HDR_SIZE], uint32_t chunk_pages)
{
	memset(h, 0, HDR_SIZE);
	memcpy(h, HDR_MAGIC, 8);
	put32(h + 8, VERSION);
	put32(h + 12, PGS_PAGE_SIZE);
	put32(h + 16, chunk_pages);
	put32(h + 20, 0);
}

static inline void rec_pack(uint8_t *p, const chunk_rec *c)
{
	put64(p, c->first_page);
	put64(p + 8, c->offset);
	put32(p + 16, c->nr_pages);
	put32(p + 20, c->csize);
	put32(p + 24, c->usize);
	put32(p + 28, c->codec);
	put64(p + 32, c->hash);
}

static inline void rec_unpack(const uint8_t *p, chunk_rec *c)
{
	c->first_page = get64(p);
	c->offset = get64(p + 8);
	c->nr_pages = get32(p + 16);
	c->csize = get32(p + 20);
	c->usize = get32(p + 24);
	c->codec = get32(p + 28);
	c->hash = get64(p + 32);
}

#endif

/*
 * fingerprint.h: the content fingerprint of a matrix (DESIGN.md §4), an
 * XXH3-128 of its dtype name, shape and stored bytes. Two matrices with
 * equal fingerprints are, for all practical purposes, the same matrix, so
 * the result of one can stand for the other. Pure and reentrant.
 */
#ifndef SPECTRUMD_FINGERPRINT_H
#define SPECTRUMD_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"
#include "spectrumd/tensor.h"

#define FINGERPRINT_LEN	16	/* bytes: XXH3-128, canonical big-endian */

/*
 * Hashes dtype dt, shape rows × cols and the n bytes at data into out.
 * The same matrix gives the same bytes on every machine.
 */
void	fingerprint_matrix(enum dtype dt, uint64_t rows, uint64_t cols,
	    const void *data, size_t n, unsigned char out[FINGERPRINT_LEN]);

/* Writes the 32 lowercase hex digits of fp and a NUL into buf (≥ 33). */
void	fingerprint_hex(const unsigned char fp[FINGERPRINT_LEN], char *buf,
	    size_t len);

#endif

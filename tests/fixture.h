/*
 * fixture.h: synthetic checkpoints for the tests, the benchmarks and the
 * README demo (no binary fixture is committed).
 *
 * The writer is independent of the project's reader: it has its own small
 * safetensors writer and its own float32 → F16/BF16/F8/F64 encoders (round
 * to nearest even), and uses only enum dtype from the library headers, so a
 * reader bug cannot be mirrored here.
 *
 * Weights are noise plus a planted low-rank signal,
 *	W = N + Σ_{r<rank} a_r u_r v_rᵀ,
 * N i.i.d. with std 1/√cols (drawn from a table of 4096 Gaussian quantiles,
 * five per 64-bit xoshiro256** draw), u_r and v_r random unit vectors,
 * a_r = strength · (rank − r) / rank. The strength of a tensor is
 * signal · b · (1 + ½ sin(φ + drift · step)), b ∈ [¼, 2] and φ drawn from
 * a hash of (seed, tensor name): layers and types get clearly different
 * SNRs. Norm weights (1-D) are 1 + 0.02 · noise. Everything is
 * deterministic in (seed, name), and in step when drift ≠ 0 (the noise is
 * then redrawn at each step too). Tensors are streamed a block of rows at a
 * time: memory stays a few MB plus rank · (rows + cols) floats.
 *
 * No global state: every function is reentrant.
 */
#ifndef SPECTRUMD_FIXTURE_H
#define SPECTRUMD_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spectrumd/common.h"
#include "spectrumd/tensor.h"

#define FIXTURE_MAX_DIM		8	/* dims of a tensor written here */
#define FIXTURE_NAME_MAX	128	/* bytes of a planned tensor name */

/* --- low level: one .safetensors file -------------------------------- */

/*
 * One tensor to write. Its bytes come from the first source set:
 * raw (raw_len bytes as they are, any dtype; raw_len need not match
 * dtype × shape, so a test can write a deliberately inconsistent file),
 * values (∏shape float32 values, encoded to dtype), gen, else zeros.
 * values and gen need fixture_dtype_encodable(dtype).
 */
struct fixture_tensor {
	const char	*name;
	enum dtype	 dtype;
	size_t		 ndim;		/* 0 (a scalar) … FIXTURE_MAX_DIM */
	uint64_t	 shape[FIXTURE_MAX_DIM];
	const void	*raw;
	size_t		 raw_len;
	const float	*values;
	/*
	 * Fills out[0 … n) with elements first … first + n of the row-major
	 * tensor. Called with contiguous, increasing ranges from 0; a range
	 * starts on a row boundary and holds whole rows when a row fits the
	 * writer's block (256 Ki elements). Returns SPD_OK, or an error that
	 * aborts the write.
	 */
	enum spd_err	(*gen)(void *arg, uint64_t first, size_t n, float *out);
	void		*arg;
};

/* One __metadata__ entry (string → string). */
struct fixture_meta {
	const char	*key;
	const char	*value;
};

/*
 * Writes path (created or truncated, mode 0644): the 8-byte header length,
 * a JSON header (__metadata__ first when nmeta > 0, then the tensors in
 * order, data contiguous from 0) right-padded with spaces so the data
 * starts 8-byte aligned, then the data, streamed in blocks. Returns SPD_OK,
 * SPD_EINVAL (dtype not encodable, ndim too large, size overflow, NULL
 * name), SPD_EIO (open/write failed; the partial file is removed),
 * SPD_ENOMEM, or the error a gen callback returned.
 */
enum spd_err	 fixture_write_safetensors(const char *path,
		    const struct fixture_tensor *t, size_t nt,
		    const struct fixture_meta *meta, size_t nmeta,
		    struct spd_errbuf *eb);

/* --- dtypes ---------------------------------------------------------- */

/* The safetensors name of dt ("BF16"), from this file's own table. */
const char	*fixture_dtype_name(enum dtype dt);

/* Looks up a dtype name, ignoring case. Returns true and *out, or false. */
bool		 fixture_dtype_parse(const char *name, enum dtype *out);

/* Bits of one element (16 for BF16, 4 for F4), 0 for an unknown dtype. */
unsigned	 fixture_dtype_bits(enum dtype dt);

/* True for the dtypes encoded from float32:. */
bool		 fixture_dtype_encodable(enum dtype dt);

/*
 * Encodes n float32 values into dst as little-endian dt (encodable),
 * rounding to nearest even; NaN stays NaN (sign kept). Overflow: F16, BF16
 * and F8_E5M2 give ±Inf; F8_E4M3 (no Inf) gives NaN, as torch does.
 * Returns the bytes written (n · size).
 */
size_t		 fixture_encode(enum dtype dt, const float *src, size_t n,
		    void *dst);

/* --- a Llama checkpoint in the Hugging Face Trainer layout ------------ */

struct fixture_opts {
	unsigned	 layers;	/* decoder layers */
	size_t		 hidden;
	size_t		 intermediate;
	size_t		 kv_dim;	/* rows of k_proj/v_proj; 0 = hidden */
	size_t		 vocab;
	enum dtype	 dtype;		/* an encodable dtype */
	unsigned	 shards;	/* ≤ 1: one file; k: k shards + index */
	double		 signal;	/* strength scale; 0: noise only */
	unsigned	 rank;		/* rank of the planted component */
	uint64_t	 seed;
	uint64_t	 step;		/* global_step of trainer_state.json */
	double		 drift;		/* radians of strength phase per step */
	/*
	 * A Spectrum run: per layer type, ⌊layers · P / 100⌋ layers (chosen
	 * by a hash of seed, type and layer) are frozen: written as at step
	 * 0 whatever the step, so byte-identical across checkpoints. The
	 * others, embeddings, lm_head and norms change (with drift ≠ 0);
	 * at 100 everything is frozen.
	 */
	unsigned	 frozen_percent;
	bool		 config;	/* write config.json (first) */
	bool		 trainer_state;	/* write trainer_state.json (last) */
	bool		 tied_embeddings; /* no lm_head.weight */
	bool		 with_1d;	/* the norm weights */
	bool		 meta_step;	/* "step" in each __metadata__ */
	/* Tensor (with or without ".weight") filled with NaN, or NULL. */
	const char	*nan_tensor;
	/*
	 * Comma-separated kinds to emit, or NULL for all. A kind matches a
	 * tensor's type ("self_attn.q_proj", "model.embed_tokens"), the last
	 * part of its module name ("q_proj", "norm", "lm_head") or the first
	 * part of a layer type ("self_attn", "mlp").
	 */
	const char	*only;
};

/*
 * Sets the defaults: 2 layers, hidden 64, intermediate 172, kv_dim = hidden,
 * vocab 256, BF16, one file, signal 4, rank 4, seed 1, step 0, drift 0,
 * config, trainer_state and with_1d on, the rest off/NULL. Callers change
 * fields after this call.
 */
void		 fixture_opts_init(struct fixture_opts *o);

/* One tensor of a planned checkpoint. */
struct fixture_entry {
	char		 name[FIXTURE_NAME_MAX];	/* with ".weight" */
	size_t		 ndim;				/* 1 or 2 */
	uint64_t	 shape[2];
	double		 strength;	/* a_0 (0: 1-D, noise only) */
	unsigned	 shard;		/* index of its file, from 0 */
	bool		 nan;		/* the nan_tensor */
	bool		 frozen;	/* written as at step 0 (frozen_percent) */
};

/*
 * Lists the tensors fixture_write_checkpoint() writes, in file order: embed,
 * per layer q k v o gate up down input_layernorm post_attention_layernorm,
 * norm, lm_head; with shards > 1 each shard holds a contiguous run chosen
 * by cumulative size, none empty. Returns SPD_OK, *out (caller free()s) and
 * *n, SPD_EINVAL (eb says which option: a zero size, a bad dtype, more
 * shards than tensors, an `only` kind or nan_tensor matching nothing) or
 * SPD_ENOMEM.
 */
enum spd_err	 fixture_plan(const struct fixture_opts *o,
		    struct fixture_entry **out, size_t *n,
		    struct spd_errbuf *eb);

/* Total tensor bytes of a plan (the index's total_size). */
uint64_t	 fixture_plan_bytes(const struct fixture_entry *e, size_t n,
		    enum dtype dt);

/*
 * Writes a checkpoint into dir (created with its parents if missing;
 * existing files are overwritten) in the Hugging Face Trainer order:
 * config.json, the weights (model.safetensors, or
 * model-0000i-of-0000k.safetensors then model.safetensors.index.json),
 * trainer_state.json last ({"global_step", "epoch", "log_history": []}).
 * Returns the errors of fixture_plan() and fixture_write_safetensors().
 */
enum spd_err	 fixture_write_checkpoint(const char *dir,
		    const struct fixture_opts *o, struct spd_errbuf *eb);

/* --- planted spectra (DESIGN.md §1 checks against real spectra) -------- */

/*
 * Classes of singular-value spectra: embed (tall embedding-like, high SNR:
 * a few spikes up to s₁, a narrow log-normal bulk, k/128 values at
 * s₁/16 below τ; SNR ≈ 25), heavy (power-law ESD, density ∝ λ^-α),
 * lowrank (k/16 spikes over a flat bulk), null (a third exactly zero),
 * cluster (k/8 values within 1e-4…1e-2 relative of τ).
 */
enum fixture_class {
	FC_EMBED, FC_HEAVY, FC_LOWRANK, FC_NULL, FC_CLUSTER, FC_COUNT
};

/* The class's name ("embed", …), or NULL. */
const char	*fixture_class_name(enum fixture_class c);

/* Parses a class name; false when unknown. */
bool		 fixture_class_parse(const char *name, enum fixture_class *out);

/*
 * Writes the k = min(rows, cols) planted singular values of class c into
 * s, descending, deterministic in seed (alpha: heavy's exponent, 2…4).
 */
void		 fixture_spectrum(enum fixture_class c, size_t rows,
		    size_t cols, double alpha, uint64_t seed, double *s);

/*
 * Writes W = U·diag(s)·Vᵀ (rows × cols, row-major) into out, where U and V
 * have k orthonormal columns: k Householder reflectors with Gaussian
 * vectors applied to [I; 0], in double. Returns SPD_OK or SPD_ENOMEM.
 */
enum spd_err	 fixture_planted(size_t rows, size_t cols, const double *s,
		    uint64_t seed, float *out, struct spd_errbuf *eb);

/* --- scratch directories for tests ----------------------------------- */

/*
 * Creates a fresh directory "spectrumd-<tag>.XXXXXX" under $TMPDIR (else
 * /tmp) and writes its path into buf. Returns SPD_OK, SPD_EINVAL (does not
 * fit len) or SPD_EIO.
 */
enum spd_err	 fixture_tmpdir(const char *tag, char *buf, size_t len,
		    struct spd_errbuf *eb);

/*
 * Removes path and everything under it, not following symbolic links.
 * Refuses "" and "/". Returns 0, or -1 with errno set.
 */
int		 fixture_rmtree(const char *path);

#endif
